# shellcheck shell=bash
# ensure_venv [dev]: create .venv with Python 3.11 and install the project pinned by requirements.lock.
ensure_venv() {
  local extra="${1:-}"
  local python="${PYTHON:-}"
  if [ -z "$python" ]; then
    for candidate in python3.11 python3 python; do
      if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        python="$candidate"; break
      fi
    done
  fi
  if [ -z "$python" ]; then
    echo "lma-bot needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
    exit 2
  fi
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  local stamp=".venv/.installed-${extra:-run}"
  if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    local target="."
    [ -n "$extra" ] && target=".[${extra}]"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e "$target"
    touch "$stamp"
  fi
}
