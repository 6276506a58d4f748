#!/usr/bin/env bash
# The workbook's two commands. Needs only python3 (3.10+); everything else is installed here.
#   ./workbook.sh lab    set up, then open JupyterLab on notebooks/
#   ./workbook.sh test   set up (test extras and Debian's chromium too), then run every test and notebook
#   ./workbook.sh check  set up, then run the workshop setup check
set -euo pipefail
cd "$(dirname "$0")"
VENV=${WORKBOOK_VENV:-.venv}
PY="$VENV/bin/python"

setup() {  # $1: pip extras, e.g. "[test]"
  local extras=${1:-}
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" || { echo "Could not create a virtual environment: install python3-venv (Debian: apt-get install python3-venv)." >&2; exit 1; }
  fi
  local stamp="$VENV/.installed$extras"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing the workbook and its dependencies into $VENV ..."
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -e ".$extras"
    touch "$stamp"
  fi
}

need_chromium() {  # the browser test drives Debian's chromium; never a downloaded browser
  [ -x /usr/bin/chromium ] && return 0
  echo "Installing Debian's chromium for the browser test ..."
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

case "${1:-}" in
  lab)
    setup
    root=(); [ "$(id -u)" -eq 0 ] && root=(--allow-root)
    exec "$VENV/bin/jupyter" lab --notebook-dir=notebooks "${root[@]}" "${@:2}"
    ;;
  test)
    setup "[test]"
    need_chromium
    exec "$PY" -m pytest --nbval-lax --nbval-cell-timeout=300 "${@:2}"
    ;;
  check)
    setup
    exec "$PY" -m tutorial.setup_check "${@:2}"
    ;;
  *)
    echo "usage: ./workbook.sh lab | test | check" >&2
    exit 2
    ;;
esac
