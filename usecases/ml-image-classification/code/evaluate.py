"""Evaluate model.joblib on the test images listed in data/test.csv; write accuracy.json.

For a sweep: --model PATH evaluates that model, --accuracy PATH writes the result there."""

import argparse
import json

import numpy as np
import pandas as pd
from joblib import load
from skimage import io
from sklearn.metrics import accuracy_score

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="model.joblib", help="the model to evaluate")
parser.add_argument("--accuracy", default="accuracy.json", help="where the result is written")
args = parser.parse_args()

data = pd.read_csv("data/test.csv")
X = np.stack([io.imread(f).ravel() / 255.0 for f in data["filename"]])
y = data["label"].to_numpy()

model = load(args.model)
accuracy = accuracy_score(y, model.predict(X))
with open(args.accuracy, "w") as fh:
    json.dump({"accuracy": round(float(accuracy), 4), "model": type(model).__name__,
               "test_images": int(len(y))}, fh, indent=1, sort_keys=True)
    fh.write("\n")
print("accuracy", accuracy)
