#!/usr/bin/env bash
# Set up everything and run the demo: the reproducible image-classification analysis
# (usecases/ml-image-classification), every step a recorded run in a software container.
#   bash tools/demo.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RR_WITH_DOCKER=1 bash tools/setup.sh
if ! bash tools/dockerd.sh; then
  echo "demo: no Docker engine could be started; the usecase runs on the host instead" >&2
  RR_WITH_ML=1 bash tools/setup.sh
fi
export PATH="$PWD/.venv/bin:$PATH"
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/rr-demo-XXXXXX")/work}
bash usecases/ml-image-classification/run.sh "$work"
# its provenance in a standard form: a Workflow Run RO-Crate (Process Run Crate profile)
rr export ro-crate -d "$work/ml-project" -o "$work/ml-project-crate.zip" --with-content
