#!/usr/bin/env bash
# The reproducible image-classification analysis, end to end:
#   bash usecases/ml-image-classification/run.sh [WORKDIR]
# Every step runs inside the `software` container (Python + scikit-learn, built offline from
# Debian packages). Without a Docker engine the same steps run on the host, and it says so.
# RR_USECASE_IMAGES sets the images per class (default 150; the test uses fewer).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:-$here/work}
per_class=${RR_USECASE_IMAGES:-150}
export RR_OFFLINE=1   # images come from the local engine, never from a registry

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
quote() {  # one word as it is typed into a shell: plain, or in single quotes (as shlex.quote)
  case $1 in
    '' | *[!A-Za-z0-9_./:=@%+,-]*) printf "'%s'" "$(printf %s "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf %s "$1" ;;
  esac
}
show() {  # print the command so that it can be copied (quotes kept), then run it
  local line='$' word
  for word in "$@"; do line+=" $(quote "$word")"; done
  printf '\033[2m%s\033[0m\n' "$line"
  "$@"
}

use_docker=0
if [ "${RR_USECASE_NO_DOCKER:-0}" != 1 ] && docker version >/dev/null 2>&1; then
  use_docker=1
  say "Software image: rr-ml:1 (debootstrap + Debian's python3-sklearn/-skimage/-pandas)"
  bash "$repo/containers/ml/build.sh" rr-ml:1
else
  say "No Docker engine here: the same steps run on the host, without the container"
  python3 -c "import sklearn, skimage, pandas, joblib" 2>/dev/null || {
    echo "the host needs numpy, pandas, scikit-learn, scikit-image and joblib:" >&2
    echo "  pip install 'rr-recorder[ml]'  (or RR_WITH_ML=1 bash tools/setup.sh)" >&2
    exit 1; }
fi

crun() {  # crun MESSAGE [rr run options...] CMD : a step, in the container when there is one
  if [ "$use_docker" = 1 ]; then show rr containers-run -n software "$@"; else show rr run "$@"; fi
}

rm -rf "$work"
mkdir -p "$work"
show cd "$work"

say "0. Where the data is published: an archive on a web server (here: this machine only)"
# the stand-in for https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz of DataLad's
# handbook: an Imagenette-like archive (train/<class>/*.png, val/<class>/*.png) made offline
# from the handwritten digits that ship with scikit-learn, served on 127.0.0.1
stage="$work/source/imagenette2-160"
mkdir -p "$stage"
if [ "$use_docker" = 1 ]; then
  show docker run --rm --network none -u "$(id -u):$(id -g)" -v "$here:$here:ro" \
    -v "$stage:$stage" rr-ml:1 python3 "$here/make_images.py" "$stage" "$per_class"
else
  show python3 "$here/make_images.py" "$stage" "$per_class"
fi
show tar -czf source/imagenette2-160.tgz -C "$stage" train val
rm -rf "$stage"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '\033[2m$ %s &\033[0m\n' "python3 -m http.server --bind 127.0.0.1 --directory source $port"
python3 -m http.server --bind 127.0.0.1 --directory source "$port" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port/imagenette2-160.tgz"
python3 - "$url" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=1)
        break
    except OSError:
        time.sleep(0.1)
PY
# git-annex downloads from a loopback address only when told so (for this script only)
show export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=annex.security.allowed-ip-addresses \
  GIT_CONFIG_VALUE_0=127.0.0.1

say "1. The input data: its own dataset, downloaded with its source recorded"
show rr create imagenette
show cd imagenette
show rr download-url --archive -m "Download Imagenette dataset" "$url"
# the URL is the content's source: drop every copy here, clones get it from the web again
show rr drop imagenette2-160.tgz imagenette2-160
show cd "$work"

say "2. The analysis dataset, with the input installed as a subdataset (YODA)"
show rr create -c text2git -c yoda ml-project
show cd ml-project
show rr clone -d . ../imagenette data/raw
if [ "$use_docker" = 1 ]; then
  show rr containers-add software --url dhub://rr-ml:1
fi
show cp "$here/code/prepare.py" code/
show rr save -m "Add script to prepare the data" code/prepare.py

say "3. Prepare the data"
crun -m "Prepare the data for categorization" \
  --input 'data/raw/imagenette2-160/train/*/*.png' \
  --input 'data/raw/imagenette2-160/val/*/*.png' \
  --output data/train.csv --output data/test.csv "python3 code/prepare.py"
show cp "$here/code/train.py" "$here/code/evaluate.py" code/
show rr save -m "Add training and evaluation scripts" --version-tag ready4analysis \
  code/train.py code/evaluate.py

say "4. Train and evaluate an SGD classifier"
crun -m "Train an SGD classifier on the data" \
  --input 'data/raw/imagenette2-160/train/*/*.png' --input data/train.csv \
  --output model.joblib \
  "python3 code/train.py"
crun -m "Evaluate SGD classifier on test data" \
  --input 'data/raw/imagenette2-160/val/*/*.png' --input data/test.csv --input model.joblib \
  --output accuracy.json "python3 code/evaluate.py"
show cat accuracy.json

say "5. More iterations: change the code, tag it, recompute the range"
show sed -i 's/max_iter=10,/max_iter=100,/' code/train.py
show rr save -m "Increase the amount of iterations to 100" --version-tag SGD-100 code/train.py
show rr rerun -m "Recompute classification with more iterations" ready4analysis..SGD-100
show cat accuracy.json

say "6. A sweep: three max_iter values as one array run, two jobs at a time (Dask)"
# one job per value, each an ordinary run record of its own, committed in value order
crun -m "Train and evaluate SGD with max_iter={max_iter}" --param max_iter=1,5,20 -J 2 \
  --input 'data/raw/imagenette2-160/train/*/*.png' \
  --input 'data/raw/imagenette2-160/val/*/*.png' --input data/train.csv --input data/test.csv \
  --output 'sweep/max_iter-{max_iter}/model.joblib' \
  --output 'sweep/max_iter-{max_iter}/accuracy.json' \
  "python3 code/train.py --max-iter {max_iter} --model {outputs[0]} && python3 code/evaluate.py --model {outputs[0]} --accuracy {outputs[1]}"
show rr metrics show --per-file 'sweep/*/accuracy.json'

say "7. Another model on a branch: random forest"
show sed -i 's/from sklearn.linear_model import SGDClassifier/from sklearn.ensemble import RandomForestClassifier/; s/model = SGDClassifier(max_iter=100, random_state=42)/model = RandomForestClassifier(n_estimators=50, random_state=42)/' code/train.py
show rr save -m "Switch to random forest classification" --version-tag random-forest code/train.py
show rr rerun --branch randomforest -m "Recompute classification with random forest classifier" \
  ready4analysis..SGD-100
show git checkout -q master

say "8. Compare the models"
show git --no-pager diff master randomforest -- accuracy.json
show rr metrics show -a -T accuracy.json
show git --no-pager log --oneline --graph --all --decorate -n 12
show rr runs -a --only-changed --sort-by accuracy --desc
show rr report -a -o "$work/report.html"

say "9. A collaborator reproduces the random-forest result in a fresh clone"
show cd "$work"
show rr clone ml-project collaborator
show cd collaborator
show git checkout -q randomforest
show rr rerun --no-cache --since=random-forest
if git diff --quiet origin/randomforest -- accuracy.json; then
  echo "reproduced: accuracy.json is identical to the recorded one"
else
  echo "NOT reproduced: accuracy.json differs" >&2
  exit 1
fi
echo
echo "analysis left in $work/ml-project"
