#!/usr/bin/env bash
# The Python package's tests: builds and installs the package from this checkout into a
# virtual environment under target/ (`pip install .`: maturin and PyO3, the same Rust
# library), then runs pytest, which compares its counts with the command-line tool's
# (built by `cargo test` before, or `cargo build`).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# The debug profile, as `cargo test` built it: the bindings link the dependencies already
# compiled there (a release build of them would double the time of a cold run).
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/pip" install --quiet --disable-pip-version-check ".[test]"
export NODEVICE_SELECT=1
"$venv/bin/python" -m pytest -q python/tests
