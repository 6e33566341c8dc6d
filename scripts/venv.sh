# Virtual environments for scripts/start, scripts/test and the set-up checks (sourced, not run).
#
# ensure_venv DIR EXTRAS [fresh]: DIR holds a virtual environment with the project installed
# (editable), with EXTRAS ("" or "dev"). Nothing is installed again while pyproject.toml, the
# venv's Python and the extras are those of the last install (a stamp in DIR records them).
# With "fresh", a stale venv is emptied first, so it holds nothing that was declared before.

envoy_python="${PYTHON:-python3}"

# The key of an install: pyproject.toml, the venv's Python and what was asked for.
venv_key() {
  { cat pyproject.toml; "$1/bin/python" -c 'import sys; print(sys.version)'; echo "$2"; } \
    | sha256sum | cut -c1-32
}

# Make DIR a working venv (a missing one, or one whose Python no longer runs, is made anew).
make_venv() {
  if ! "$1/bin/python" -c '' 2>/dev/null; then
    "$envoy_python" -m venv --clear "$1"
  fi
}

# A uv to install with: $UV, one on PATH, the dev venv's, or one pip puts into DIR (the venv
# being made). uv resolves and installs the same versions as pip in seconds instead of
# minutes (about 8 s against 100 s for the dev extras here); without it (no wheel for this
# platform, no index), pip does the install.
find_uv() {
  local candidate
  for candidate in "${UV:-}" "$(command -v uv || true)" .venv/bin/uv "$1/bin/uv"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  "$1/bin/python" -m pip install -qq uv >/dev/null 2>&1 && [ -x "$1/bin/uv" ] && echo "$1/bin/uv"
}

venv_is_current() {
  [ -f "$1/.envoy-stamp" ] && grep -qx "$(venv_key "$1" "$2")" "$1/.envoy-stamp"
}

ensure_venv() {
  local dir="$1" extras="$2" spec="."
  make_venv "$dir"
  venv_is_current "$dir" "$extras" && return 0
  if [ "${3:-}" = fresh ]; then "$envoy_python" -m venv --clear "$dir"; fi
  [ -n "$extras" ] && spec=".[$extras]"
  echo "Installing Envoy${extras:+ and its $extras tools} into $dir (first run, or pyproject.toml changed)"
  local uv
  # pip also does it when uv cannot (uv reads no PIP_* settings, such as a local wheel directory).
  if ! { uv="$(find_uv "$dir")" \
    && "$uv" pip install --quiet --compile-bytecode --python "$dir/bin/python" -e "$spec"; }; then
    # Editable installs of a pyproject.toml project need pip 21.3 or newer.
    # -qq: errors only (a pip.conf index that is missing here warns once per package).
    "$dir/bin/python" -m pip install -qq "pip>=21.3"
    "$dir/bin/python" -m pip install -qq -e "$spec"
  fi
  # The dev extras include the runtime dependencies, so such a venv serves scripts/start too.
  venv_key "$dir" "$extras" >"$dir/.envoy-stamp"
  if [ -n "$extras" ]; then venv_key "$dir" "" >>"$dir/.envoy-stamp"; fi
}
