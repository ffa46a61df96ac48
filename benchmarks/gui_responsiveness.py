"""Event-loop stalls while the main window classifies 500 images, beside throughput.

A 5 ms QTimer on the GUI thread records the gap between its ticks while the window
classifies a dropped folder (real Lite0 weights, 640x480 JPEGs made from real photos),
with thumbnails and the preview running as they do for a user. The longest gap beyond
the timer's own interval is the worst freeze a user could feel; the goal is <= 100 ms.

    python benchmarks/gui_responsiveness.py [--count 500]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _common import WORK, StallMeter, make_jpegs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("EFFNET_APP_HOME", tempfile.mkdtemp(prefix="effnet-bench-"))
    folder = WORK / f"gui_{args.count}"
    make_jpegs(folder, args.count, (640, 480))

    from PySide6.QtCore import QEventLoop

    from effnet_app.gui.app import create_application
    from effnet_app.gui.main_window import MainWindow

    app = create_application()
    window = MainWindow()
    window.show()
    wait = QEventLoop()
    window.catalog_loaded.connect(wait.quit)
    wait.exec()

    meter = StallMeter()
    done = QEventLoop()
    window.controller.run_finished.connect(lambda _n: done.quit())
    window.controller.run_failed.connect(lambda exc: (print("failed:", exc), done.quit()))
    meter.start()
    window.receive_paths([str(folder)])
    done.exec()
    elapsed = meter.stop()
    classified = window.results.count()
    print(f"platform: {app.platformName()}, images: {classified}")
    print(f"throughput (incl. model load)  : {classified / elapsed:6.1f} images/s")
    print(meter.report())
    window.close()


if __name__ == "__main__":
    main()
