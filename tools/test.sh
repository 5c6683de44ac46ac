#!/usr/bin/env bash
# Set up and run the whole test suite: bash tools/test.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
export RR_WITH_DOCKER=${RR_WITH_DOCKER:-1}
export RR_WITH_BROWSER=${RR_WITH_BROWSER:-1}  # rr report's tests open it in headless Chromium
export RR_WITH_SLURM=${RR_WITH_SLURM:-1}  # the tests start Slurm themselves (tests/slurm_cluster.py)
export RR_WITH_ROC=${RR_WITH_ROC:-1}  # the RO-Crate validator in .venv-roc (tests/test_rocrate.py)
bash tools/setup.sh
if [ "$RR_WITH_DOCKER" = 1 ]; then
  bash tools/dockerd.sh || echo "test: no Docker engine could be started" >&2
fi
export PATH="$PWD/.venv/bin:$PATH"
# lint and types first (seconds): the rules are in pyproject.toml
echo "test: ruff check recorder procedures" >&2
.venv/bin/python -m ruff check --no-cache recorder procedures
echo "test: mypy (recorder/)" >&2
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest -n "${RR_TEST_JOBS:-2}" "$@"
