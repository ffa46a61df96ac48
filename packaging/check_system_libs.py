#!/usr/bin/env python3
"""Check that the system libraries Qt needs are present; install them or say how.

Runs ``ldd`` over PySide6's own Qt libraries and platform plugins (xcb for a real window,
offscreen for tests) and maps every missing library to its Debian package. As root with
apt-get it installs them; otherwise it prints the exact command and exits 1.

Usage: check_system_libs.py [--for run|test] [--no-install]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

# soname -> Debian package: the libraries Qt's xcb and offscreen platforms link to.
DEBIAN_PACKAGES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-util.so.1": "libxcb-util1",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libXrender.so.1": "libxrender1",
    "libXext.so.6": "libxext6",
}

# What each target needs: tests run offscreen; `make run` opens a real (xcb) window.
TARGETS = {
    "test": [
        "lib/libQt6Core.so.6",
        "lib/libQt6Gui.so.6",
        "lib/libQt6Widgets.so.6",
        "plugins/platforms/libqoffscreen.so",
        "plugins/imageformats/libqsvg.so",
    ],
    "run": [
        "lib/libQt6Core.so.6",
        "lib/libQt6Gui.so.6",
        "lib/libQt6Widgets.so.6",
        "lib/libQt6XcbQpa.so.6",
        "plugins/platforms/libqxcb.so",
        "plugins/imageformats/libqsvg.so",
    ],
}


def qt_dir() -> Path:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("PySide6 is not installed in this Python; run `make run` or `make test`.")
    return Path(list(spec.submodule_search_locations)[0]) / "Qt"


def missing_libraries(target: str) -> list[str]:
    missing: set[str] = set()
    base = qt_dir()
    for rel in TARGETS[target]:
        path = base / rel
        if not path.exists():
            continue
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "not found" in line:
                missing.add(line.split("=>")[0].strip())
    return sorted(missing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--for", dest="target", choices=sorted(TARGETS), default="run")
    parser.add_argument("--no-install", action="store_true")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        return 0  # Qt wheels bundle what they need on Windows and macOS
    if shutil.which("ldd") is None:
        print("check_system_libs: ldd not found; skipping the Qt library check.")
        return 0
    missing = missing_libraries(args.target)
    if not missing:
        print(f"Qt system libraries: all present (for make {args.target}).")
        return 0
    packages = sorted({DEBIAN_PACKAGES.get(lib, "") for lib in missing} - {""})
    unknown = [lib for lib in missing if lib not in DEBIAN_PACKAGES]
    print("Qt needs system libraries that are missing: " + ", ".join(missing))
    command = "apt-get update && apt-get install -y " + " ".join(packages)
    sudo_command = "sudo apt-get update && sudo apt-get install -y " + " ".join(packages)
    can_install = os.geteuid() == 0 and shutil.which("apt-get") and not args.no_install
    if packages and can_install:
        print(f"Installing them: {command}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)
        still = missing_libraries(args.target)
        if not still:
            return 0
        print("Still missing after install: " + ", ".join(still))
        return 1
    if packages:
        print(f"Install them with:\n    {sudo_command}")
    if unknown:
        print(
            "No known Debian package for: " + ", ".join(unknown) + " (search: apt-file search NAME)"
        )
    print("Without them Qt stops with 'could not load the Qt platform plugin \"xcb\"'.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
