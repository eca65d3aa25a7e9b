"""Prepare stage of the example pipeline: a labelled subset of scikit-learn's digits as .npz.

Stands for whatever a project does to get its data ready (download, filter, convert). The
output is what ``cgan run --dataset`` reads: ``images`` (N, H, W) uint8 and ``labels`` (N,).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    """Write the first ``--items`` digits of the requested classes to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="The .npz file to write.")
    parser.add_argument("--items", type=int, default=512, help="How many digits to keep.")
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9", help="Comma-separated digit classes.")
    args = parser.parse_args()
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.isin(digits.target, [int(c) for c in args.classes.split(",")])
    images = (digits.images[keep][: args.items] * (255.0 / 16.0)).round().astype(np.uint8)
    labels = digits.target[keep][: args.items].astype(np.int64)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".partial.npz")
    np.savez(partial, images=images, labels=labels)
    partial.replace(args.out)  # a killed stage never leaves a half-written dataset behind
    print(f"wrote {len(images)} digits of classes {args.classes} to {args.out}")


if __name__ == "__main__":
    main()
