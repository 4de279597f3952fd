# Sourced by scripts/serve and scripts/test: creates .venv and installs the package with the
# extras in $extras, reinstalling only when pyproject.toml changed (pip is slow even when idle).

find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "$0: Python 3.11 or newer is required" >&2
    exit 1
}

if [[ ! -x .venv/bin/python ]]; then
    "$(find_python)" -m venv .venv
fi

stamp=".venv/.installed-${extras//,/-}"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
    echo "$wanted" >"$stamp"
fi
