#!/usr/bin/env bash
# Test the Python package the way a fresh machine installs it: a new virtual environment,
# `pip install ./bindings-python` (pip fetches maturin from PyPI as the build backend), the test
# tools, then ruff and pytest. Extra arguments go to pytest (e.g. -k threads).
# Needs: python3 (>= 3.10, with venv and pip), cargo, gcc, and the real tools the tests run
# (umoci, runc, dockerd and /usr/bin/docker: scripts/install-test-deps.sh installs them).
set -euo pipefail
package=$(cd "$(dirname "$0")/.." && pwd)
root=$(dirname "$package")
python=${PYTHON:-python3}
venv=${ZEROIMAGE_PYTHON_VENV:-$root/target/python-test-venv}
pip_flags=(--disable-pip-version-check --progress-bar off)
start=$(date +%s)
step() { printf '\n--> [python %4ss] %s\n' "$(($(date +%s) - start))" "$*"; }

step "fresh virtual environment at $venv ($("$python" --version))"
rm -rf "$venv"
"$python" -m venv "$venv"

step "pip install ./bindings-python (builds the extension with maturin, release profile)"
"$venv/bin/python" -m pip install "${pip_flags[@]}" "$package"

step "test tools"
"$venv/bin/python" -m pip install "${pip_flags[@]}" \
    "pytest>=8,<10" "mypy>=1.10,<3" "ruff>=0.6,<1" "maturin>=1.9,<2"

cd "$package"
step "ruff"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .

step "pytest"
"$venv/bin/python" -m pytest --durations=10 "$@"
step "done"
