#!/usr/bin/env bash
# The workbook's two commands. Needs only python3 (3.10+); everything else is installed here.
#   ./workbook.sh lab    set up, then open JupyterLab on notebooks/
#   ./workbook.sh test   set up (test extras and Debian's chromium too), then run the full suite: every test,
#                        every notebook twice in one kernel, the browser test
#   ./workbook.sh quick  set up, then module tests and every notebook under nbval (no browser): for contributors
#   ./workbook.sh check  set up, then run the workshop setup check
#   ./workbook.sh serve  set up, then start the instructor's shared dev server for a room (--help)
set -euo pipefail
cd "$(dirname "$0")"
VENV=${WORKBOOK_VENV:-.venv}
PY="$VENV/bin/python"
WORKERS=${WORKBOOK_TEST_WORKERS:-2}  # full suite: one pytest-xdist worker per core (4 on 2 cores drove the load to 15 with the browser)
QUICK_WORKERS=${WORKBOOK_TEST_WORKERS:-3}  # quick: its tests mostly wait on servers and timers; at six on 2 cores notebook 07's back-to-back loop no longer met the read limit (mean 25 ms, not 50) and its claim failed

as_root() {  # run a command as root: directly, or through sudo without a password prompt
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else echo "Need root for: $* (no sudo here). Ask an administrator to run it." >&2; return 1
  fi
}

apt_install() {  # Debian packages, non-interactively
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

make_venv() {  # a virtual environment with a working pip, or a clear message
  if [ -x "$PY" ] && "$PY" -m pip --version >/dev/null 2>&1; then return 0; fi
  rm -rf "$VENV"  # a half-made one (venv without ensurepip) would fail forever after
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    echo "python3 cannot create virtual environments; installing Debian's python3-venv ..."
    apt_install python3-venv || { echo "Install python3-venv (Debian/Ubuntu: apt-get install python3-venv), then run this again." >&2; exit 1; }
    python3 -m venv "$VENV" || { rm -rf "$VENV"; echo "python3 -m venv still fails; see the message above." >&2; exit 1; }
  fi
}

setup() {  # $1: pip extras, e.g. "[test]"
  local extras=${1:-}
  make_venv
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
  if ! apt_install chromium; then
    echo "Could not install Debian's chromium: the browser test will be skipped." >&2
    [ -z "${CI:-}" ] || { echo "In CI the browser test must run: failing." >&2; exit 1; }
  fi
}

need_nginx() {  # the secured-endpoint tests put Debian's nginx (TLS, gRPC) in front of the dev server
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] && return 0
  echo "Installing Debian's nginx for the secured-endpoint tests ..."
  if ! apt_install nginx-light; then
    echo "Could not install Debian's nginx: the secured-endpoint tests will be skipped." >&2
    [ -z "${CI:-}" ] || { echo "In CI the secured-endpoint tests must run: failing." >&2; exit 1; }
  fi
}

need_hub_proxy() {  # the JupyterHub test's proxy: configurable-http-proxy from the npm registry, project-local
  local dir=build/hub-proxy version=5.3.0
  [ -x "$dir/node_modules/.bin/configurable-http-proxy" ] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "Installing Debian's nodejs and npm for the JupyterHub test's proxy ..."
    if ! apt_install nodejs npm; then
      echo "npm is missing and could not be installed: the JupyterHub test will be skipped." >&2
      [ -z "${CI:-}" ] || { echo "In CI the JupyterHub test must run: failing." >&2; exit 1; }
      return 0
    fi
  fi
  echo "Installing configurable-http-proxy $version (npm) into $dir for the JupyterHub test ..."
  mkdir -p "$dir"
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "configurable-http-proxy@$version" >/dev/null; then
    echo "Could not install configurable-http-proxy: the JupyterHub test will be skipped." >&2
    [ -z "${CI:-}" ] || { echo "In CI the JupyterHub test must run: failing." >&2; exit 1; }
  fi
}

need_devcontainer_cli() {  # the launch-config test reads .devcontainer/ with the real Dev Containers CLI (npm)
  local dir=build/devcontainer-cli version=0.89.0
  [ -x "$dir/node_modules/.bin/devcontainer" ] && return 0
  command -v npm >/dev/null 2>&1 || { echo "npm is missing: the Dev Containers CLI check will be skipped." >&2; return 0; }
  echo "Installing @devcontainers/cli $version (npm) into $dir for the launch-config test ..."
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@devcontainers/cli@$version" >/dev/null ||
    echo "Could not install @devcontainers/cli: its check will be skipped." >&2
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
    need_nginx
    need_hub_proxy
    need_devcontainer_cli
    exec "$PY" -m pytest -n "$WORKERS" --dist loadgroup --durations=15 "${@:2}"
    ;;
  quick)  # loadfile: nbval's cells of one notebook stay on one worker, in order
    setup "[test]"
    exec "$PY" -m pytest -n "$QUICK_WORKERS" --dist loadfile -m "not full" --nbval-lax --nbval-cell-timeout=300 \
      --durations=10 "${@:2}"
    ;;
  serve)  # the instructor's shared dev server for a room (no Docker): see --help
    setup
    exec "$PY" -m tutorial.serve "${@:2}"
    ;;
  check)
    setup
    exec "$PY" -m tutorial.setup_check "${@:2}"
    ;;
  *)
    echo "usage: ./workbook.sh lab | test | quick | check | serve" >&2
    exit 2
    ;;
esac
