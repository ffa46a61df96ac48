#!/usr/bin/env bash
# Put "EfficientNet Classifier" into the Linux application menu for the current user.
#
#   packaging/install-desktop-entry.sh [LAUNCHER]     install (or refresh)
#   packaging/install-desktop-entry.sh --uninstall    remove what install put there
#
# Installs packaging/effnet-app.desktop into $XDG_DATA_HOME/applications (default
# ~/.local/share/applications) and the icons into the hicolor theme there
# ($XDG_DATA_HOME/icons/hicolor/SIZExSIZE/apps/effnet-app.png, plus scalable/apps/*.svg).
# Exec= is rewritten to the absolute path of the launcher, so the entry works even though
# a virtualenv's bin folder is not on the desktop's PATH. LAUNCHER is, in order:
#   1. the argument (for example a PyInstaller build: dist/effnet-app/effnet-app);
#   2. effnet-app-gui next to $PYTHON (default: the python3 first on PATH; an activated
#      virtualenv's python3 comes first), then in $VIRTUAL_ENV/bin and this checkout's .venv/bin;
#   3. effnet-app-gui on PATH.
# Needs no root. Runs update-desktop-database and gtk-update-icon-cache when installed.
set -euo pipefail

NAME=effnet-app
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DESKTOP_SRC=$HERE/$NAME.desktop
ICON_DIR_SRC=$ROOT/resources/icons
SVG_SRC=$ROOT/resources/icon.svg
SIZES=(16 32 48 64 128 256 512)

DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
APPS_DIR=$DATA_HOME/applications
HICOLOR=$DATA_HOME/icons/hicolor

say() { printf '%s\n' "$*"; }
die() { printf 'install-desktop-entry: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

refresh_caches() {
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$APPS_DIR" 2>/dev/null || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -d "$HICOLOR" ]; then
        # -t: a per-user hicolor folder has no index.theme of its own
        gtk-update-icon-cache -q -f -t "$HICOLOR" 2>/dev/null || true
    fi
}

find_launcher() {
    local candidate python
    if [ -n "${1:-}" ]; then
        candidate=$1
        [ -f "$candidate" ] && [ -x "$candidate" ] || die "not an executable file: $candidate"
        (cd "$(dirname "$candidate")" && printf '%s/%s\n' "$(pwd -P)" "$(basename "$candidate")")
        return
    fi
    python=$(command -v "${PYTHON:-python3}" 2>/dev/null || true)
    for candidate in \
        ${python:+"$(dirname "$python")/effnet-app-gui"} \
        ${VIRTUAL_ENV:+"$VIRTUAL_ENV/bin/effnet-app-gui"} \
        "$ROOT/.venv/bin/effnet-app-gui" \
        "$(command -v effnet-app-gui 2>/dev/null || true)"; do
        if [ -n "$candidate" ] && [ -f "$candidate" ] && [ -x "$candidate" ]; then
            (cd "$(dirname "$candidate")" && printf '%s/%s\n' "$(pwd -P)" "$(basename "$candidate")")
            return
        fi
    done
    die "effnet-app-gui not found. Install the app first (make run, or pip install .), activate
its virtualenv, or give the launcher's path: $0 /path/to/effnet-app-gui"
}

# A path as one argument of a desktop-entry Exec= key: quoted when it needs to be, with the
# characters the spec reserves inside quotes escaped, then escaped again as a string value.
exec_quote() {
    local path=$1 quoted
    case $path in
        *[[:space:]\"\'\\\`\$\<\>\~\|\&\;\*\?\#\(\)]*)
            quoted=$(printf '%s' "$path" | sed -e 's/[\\"`$]/\\&/g')
            quoted="\"$quoted\""
            ;;
        *) quoted=$path ;;
    esac
    printf '%s' "$quoted" | sed -e 's/\\/\\\\/g' -e 's/%/%%/g'
}

install_entry() {
    local launcher exec_arg try_exec size src
    [ -f "$DESKTOP_SRC" ] || die "missing $DESKTOP_SRC"
    [ -f "$ICON_DIR_SRC/icon-256.png" ] || die "missing icons in $ICON_DIR_SRC (run: make icons)"
    launcher=$(find_launcher "${1:-}")
    exec_arg=$(exec_quote "$launcher")
    try_exec=$(printf '%s' "$launcher" | sed -e 's/\\/\\\\/g')

    mkdir -p "$APPS_DIR"
    # sed replacement text: escape &, | and backslashes once more
    local exec_sed try_sed
    exec_sed=$(printf '%s' "$exec_arg" | sed -e 's/[\\&|]/\\&/g')
    try_sed=$(printf '%s' "$try_exec" | sed -e 's/[\\&|]/\\&/g')
    sed -e "s|^Exec=effnet-app-gui |Exec=$exec_sed |" \
        -e "s|^TryExec=.*|TryExec=$try_sed|" \
        "$DESKTOP_SRC" >"$APPS_DIR/$NAME.desktop.tmp"
    chmod 644 "$APPS_DIR/$NAME.desktop.tmp"
    mv -f "$APPS_DIR/$NAME.desktop.tmp" "$APPS_DIR/$NAME.desktop"
    say "installed $APPS_DIR/$NAME.desktop (Exec: $launcher)"

    for size in "${SIZES[@]}"; do
        src=$ICON_DIR_SRC/icon-$size.png
        [ -f "$src" ] || die "missing $src (run: make icons)"
        install -D -m 644 "$src" "$HICOLOR/${size}x${size}/apps/$NAME.png"
    done
    install -D -m 644 "$SVG_SRC" "$HICOLOR/scalable/apps/$NAME.svg"
    say "installed icons into $HICOLOR (${SIZES[*]} px and scalable)"
    refresh_caches
}

uninstall_entry() {
    local size path removed=0
    for path in "$APPS_DIR/$NAME.desktop" "$HICOLOR/scalable/apps/$NAME.svg"; do
        if [ -e "$path" ]; then rm -f "$path"; removed=$((removed + 1)); fi
    done
    for size in "${SIZES[@]}"; do
        path=$HICOLOR/${size}x${size}/apps/$NAME.png
        if [ -e "$path" ]; then rm -f "$path"; removed=$((removed + 1)); fi
    done
    refresh_caches
    say "removed $removed files from $DATA_HOME"
}

case "${1:-}" in
    -h | --help) usage ;;
    --uninstall) uninstall_entry ;;
    -*) usage >&2; exit 2 ;;
    *) install_entry "${1:-}" ;;
esac
