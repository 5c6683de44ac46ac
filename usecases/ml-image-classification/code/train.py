"""Train a classifier on the training images listed in data/train.csv; save model.joblib."""

import numpy as np
import pandas as pd
from joblib import dump
from skimage import io
from sklearn.linear_model import SGDClassifier

data = pd.read_csv("data/train.csv")
X = np.stack([io.imread(f).ravel() / 255.0 for f in data["filename"]])
y = data["label"].to_numpy()

model = SGDClassifier(max_iter=10, random_state=42)
model.fit(X, y)
dump(model, "model.joblib")
print("trained", type(model).__name__, "on", len(y), "images")
