"""Linear probes of the synthetic LIReC corpus (what signal it holds; not a model result).

    python benchmarks/synthetic_lirec_probe.py [--num_movies 24] [--workdir /tmp/lirec_probe]

Writes the corpus (docs/synthetic_lirec.md), builds it with the moviegraphs_lirec builder and
fits, on the train split, softmax regressions (numpy, standardised features, L2, full-batch
gradient descent) and reports test accuracies:

* interaction top-1 / top-5 from the clip's visual, dialogue or both features;
* pair identification: a linear score of the candidate's two track vectors (first and second
  character concatenated), softmax over the clip's candidates, trained with the true pair
  (full supervision) -- against the random expectation mean(1 / P).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _standardise(train: np.ndarray, *others: np.ndarray):
    mu, sd = train.mean(0), train.std(0) + 1e-6
    return [(x - mu) / sd for x in (train, *others)]


def softmax_regression(x: np.ndarray, y: np.ndarray, classes: int, *, steps: int = 400,
                       lr: float = 0.5, l2: float = 1e-3) -> np.ndarray:
    w = np.zeros((x.shape[1] + 1, classes))
    xb = np.concatenate([x, np.ones((len(x), 1))], 1)
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        z = xb @ w
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= lr * (xb.T @ (p - onehot) / len(x) + l2 * w)
    return w


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((len(x), 1))], 1) @ w


def pair_probe(train: list[dict], test: list[dict], steps: int = 400, lr: float = 0.5
               ) -> tuple[float, float]:
    def feats(ex):
        t = np.asarray(ex["pair_tracks"], np.float64)
        return t.reshape(t.shape[0], -1)

    tr = [(feats(e), int(e["true_pair"])) for e in train if int(e["true_pair"]) >= 0]
    te = [(feats(e), int(e["true_pair"])) for e in test if int(e["true_pair"]) >= 0]
    allx = np.concatenate([f for f, _ in tr])
    mu, sd = allx.mean(0), allx.std(0) + 1e-6
    w = np.zeros(allx.shape[1])
    for _ in range(steps):
        g = np.zeros_like(w)
        for f, t in tr:
            fz = (f - mu) / sd
            z = fz @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            g += fz.T @ p - fz[t]
        w -= lr * (g / len(tr) + 1e-3 * w)
    hits = [int(np.argmax(((f - mu) / sd) @ w) == t) for f, t in te]
    return float(np.mean(hits)), float(np.mean([1 / len(f) for f, _ in te]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num_movies", type=int, default=24)
    ap.add_argument("--workdir", default="/tmp/lirec_probe")
    args = ap.parse_args()
    from jaxaffect.data import prepared
    from jaxaffect.data.build import build_dataset
    from jaxaffect.families.lirec.synthetic import write_lirec_corpus

    root = Path(args.workdir)
    write_lirec_corpus(root / "manual", num_movies=args.num_movies, seed=0)
    bdir = build_dataset("moviegraphs_lirec", str(root / "manual"), str(root / "tfds"))
    train, test = prepared.read_examples(bdir, "train"), prepared.read_examples(bdir, "test")
    y_tr = np.array([e["interaction"] for e in train])
    y_te = np.array([e["interaction"] for e in test])
    results = {"train": len(train), "test": len(test),
               "interaction_classes_in_train": int(len(set(y_tr.tolist())))}
    for name, keys in (("visual", ("visual",)), ("dialogue", ("text",)),
                       ("visual+dialogue", ("visual", "text"))):
        xtr = np.concatenate([np.stack([e[k] for e in train]) for k in keys], 1)
        xte = np.concatenate([np.stack([e[k] for e in test]) for k in keys], 1)
        xtr, xte = _standardise(xtr, xte)
        z = predict(softmax_regression(xtr, y_tr, 101), xte)
        top5 = np.argsort(-z, 1)[:, :5]
        results[name] = {"top1": float(np.mean(z.argmax(1) == y_te)),
                         "top5": float(np.mean([y in t for y, t in zip(y_te, top5)]))}
    results["majority_top1"] = float(np.mean(y_te == np.bincount(y_tr).argmax()))
    acc, chance = pair_probe(train, test)
    results["pair_probe"] = {"accuracy": acc, "random": chance}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
