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
show() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

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
cd "$work"

say "1. The input data: its own dataset (Imagenette-like layout, digits from scikit-learn)"
show rr create imagenette
if [ "$use_docker" = 1 ]; then
  docker run --rm --network none -u "$(id -u):$(id -g)" -v "$here:$here:ro" \
    -v "$work/imagenette:$work/imagenette" rr-ml:1 \
    python3 "$here/make_images.py" "$work/imagenette" "$per_class"
else
  python3 "$here/make_images.py" "$work/imagenette" "$per_class"
fi
(cd imagenette && show rr save -m "Add train and val images (digits 3 and 8)")

say "2. The analysis dataset, with the input installed as a subdataset (YODA)"
show rr create -c text2git -c yoda ml-project
cd ml-project
show rr clone -d . ../imagenette data/raw
if [ "$use_docker" = 1 ]; then
  show rr containers-add software --url dhub://rr-ml:1
fi
cp "$here/code/prepare.py" code/
show rr save -m "Add script to prepare the data" code/prepare.py

say "3. Prepare the data"
crun -m "Prepare the data for categorization" \
  --input 'data/raw/train/*/*.png' --input 'data/raw/val/*/*.png' \
  --output data/train.csv --output data/test.csv "python3 code/prepare.py"
cp "$here/code/train.py" "$here/code/evaluate.py" code/
show rr save -m "Add training and evaluation scripts" --version-tag ready4analysis \
  code/train.py code/evaluate.py

say "4. Train and evaluate an SGD classifier"
crun -m "Train an SGD classifier on the data" \
  --input 'data/raw/train/*/*.png' --input data/train.csv --output model.joblib \
  "python3 code/train.py"
crun -m "Evaluate SGD classifier on test data" \
  --input 'data/raw/val/*/*.png' --input data/test.csv --input model.joblib \
  --output accuracy.json "python3 code/evaluate.py"
show cat accuracy.json

say "5. More iterations: change the code, tag it, recompute the range"
sed -i 's/max_iter=10,/max_iter=100,/' code/train.py
show rr save -m "Increase the amount of iterations to 100" --version-tag SGD-100 code/train.py
show rr rerun -m "Recompute classification with more iterations" ready4analysis..SGD-100
show cat accuracy.json

say "6. Another model on a branch: random forest"
sed -i 's/from sklearn.linear_model import SGDClassifier/from sklearn.ensemble import RandomForestClassifier/; s/model = SGDClassifier(max_iter=100, random_state=42)/model = RandomForestClassifier(n_estimators=50, random_state=42)/' code/train.py
show rr save -m "Switch to random forest classification" --version-tag random-forest code/train.py
show rr rerun --branch randomforest -m "Recompute classification with random forest classifier" \
  ready4analysis..SGD-100
show git checkout -q master

say "7. Compare the models"
show git --no-pager diff master randomforest -- accuracy.json
show rr metrics show -a -T accuracy.json
show git --no-pager log --oneline --graph --all --decorate -n 12

say "8. A collaborator reproduces the random-forest result in a fresh clone"
cd "$work"
show rr clone ml-project collaborator
cd collaborator
show git checkout -q randomforest
show rr rerun --since=random-forest
if git diff --quiet origin/randomforest -- accuracy.json; then
  echo "reproduced: accuracy.json is identical to the recorded one"
else
  echo "NOT reproduced: accuracy.json differs" >&2
  exit 1
fi
echo
echo "analysis left in $work/ml-project"
