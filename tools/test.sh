#!/usr/bin/env bash
# Set up and run the whole test suite: bash tools/test.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest -n "${RR_TEST_JOBS:-2}" "$@"
