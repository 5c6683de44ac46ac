"""Train a classifier on the training images listed in data/train.csv; save model.joblib.

For a sweep: --max-iter N trains with another max_iter, --model PATH saves the model there."""

import argparse
import os

import numpy as np
import pandas as pd
from joblib import dump
from skimage import io
from sklearn.linear_model import SGDClassifier

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--max-iter", type=int, help="the classifier's max_iter (a sweep)")
parser.add_argument("--model", default="model.joblib", help="where the model is saved")
args = parser.parse_args()

data = pd.read_csv("data/train.csv")
X = np.stack([io.imread(f).ravel() / 255.0 for f in data["filename"]])
y = data["label"].to_numpy()

model = SGDClassifier(max_iter=10, random_state=42)
if args.max_iter is not None:
    model.set_params(max_iter=args.max_iter)
model.fit(X, y)
os.makedirs(os.path.dirname(args.model) or ".", exist_ok=True)
dump(model, args.model)
print("trained", type(model).__name__, "on", len(y), "images")
