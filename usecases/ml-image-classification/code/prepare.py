"""Write data/train.csv and data/test.csv: one row per image with its file name and label."""

from pathlib import Path

import pandas as pd

RAW = Path("data/raw/imagenette2-160")


def table(split: str) -> pd.DataFrame:
    rows = [{"filename": str(p), "label": p.parent.name}
            for p in sorted((RAW / split).glob("*/*.png"))]
    return pd.DataFrame(rows, columns=["filename", "label"])


Path("data").mkdir(exist_ok=True)
table("train").to_csv("data/train.csv", index=False)
table("val").to_csv("data/test.csv", index=False)
print("prepared", len(table("train")), "training and", len(table("val")), "test images")
