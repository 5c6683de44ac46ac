"""Make a small Imagenette-like input dataset offline, from scikit-learn's bundled digits.

    python3 make_images.py OUTDIR [PER_CLASS]

Two classes ("three" and "eight"), each 8x8 digit scaled up to a 32x32 greyscale PNG, split into
train/<class>/ and val/<class>/ like Imagenette's layout.
"""

import sys
from pathlib import Path

import numpy as np
from skimage import io, transform
from sklearn.datasets import load_digits

out = Path(sys.argv[1])
per_class = int(sys.argv[2]) if len(sys.argv) > 2 else 150
digits = load_digits()
rng = np.random.default_rng(0)
for label, name in ((3, "three"), (8, "eight")):
    images = digits.images[digits.target == label][:per_class]
    order = rng.permutation(len(images))
    n_train = int(len(images) * 0.7)
    for rank, idx in enumerate(order):
        split = "train" if rank < n_train else "val"
        big = transform.resize(images[idx] / 16.0, (32, 32), anti_aliasing=True)
        target = out / split / name / f"{name}_{idx:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        io.imsave(target, (big * 255).astype(np.uint8), check_contrast=False)
print(f"wrote images to {out}")
