"""Train the `implicit` package's ALS and BPR on the split files aisle wrote, with the same
factors, iterations, thread count and tuning grid as aisle, and write their top-N lists for
aisle to score with its own metric code.

Usage: python implicit_peer.py SPLIT_DIR OUT_DIR [SEED]

Reads {validation,test}_{train,cases}.tsv and shape.json from SPLIT_DIR (see `aisle eval
--export-split`). Tuning picks the setting with the best validation NDCG@10 on the same
evenly spaced sample of at most 5,000 validation cases that aisle uses; with one held-out
item per case NDCG@10 is 1/log2(rank + 1) when the item is in the top 10.
"""
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.cpu.als import AlternatingLeastSquares  # noqa: E402
from implicit.cpu.bpr import BayesianPersonalizedRanking  # noqa: E402

THREADS = 2
FACTORS = 64
ALS_ITERATIONS = 15
BPR_EPOCHS = 50
SEED = 42
MAX_VALIDATION = 5000
# The same grids as aisle's tuning candidates (crates/aisle-eval/src/tuning.rs), defaults first.
ALS_GRID = [(0.01, 10.0), (0.1, 10.0), (0.01, 2.0), (0.1, 40.0), (1.0, 10.0)]  # (regularization, alpha)
BPR_GRID = [(0.05, 0.01), (0.01, 0.01), (0.1, 0.001), (0.05, 0.001)]  # (learning_rate, regularization)


def load(split_dir, name, shape):
    rows, cols = [], []
    with open(os.path.join(split_dir, f"{name}_train.tsv")) as f:
        next(f)
        for line in f:
            u, i, _ = line.split("\t")
            rows.append(int(u))
            cols.append(int(i))
    binary = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(shape["users"], shape["items"])
    )
    cases = []
    with open(os.path.join(split_dir, f"{name}_cases.tsv")) as f:
        next(f)
        for line in f:
            case, user, _history, relevant, _exclude = line.rstrip("\n").split("\t")
            cases.append((int(case), int(user), [int(x) for x in relevant.split(",") if x]))
    return binary, cases


def sample(cases, limit):
    if len(cases) <= limit:
        return cases
    step = len(cases) / limit
    return [cases[int(i * step)] for i in range(limit)]


def top_lists(model, matrix, cases, n):
    users = np.array([c[1] for c in cases], dtype=np.int32)
    ids, _ = model.recommend(users, matrix[users], N=n, filter_already_liked_items=True)
    return ids


def ndcg10(lists, cases):
    total = 0.0
    for row, (_, _, relevant) in zip(lists, cases):
        for rank, item in enumerate(row[:10]):
            if item in relevant:
                total += 1.0 / math.log2(rank + 2)
                break
    return total / len(cases)


def make(kind, params):
    if kind == "als":
        reg, _alpha = params
        return AlternatingLeastSquares(
            factors=FACTORS, regularization=reg, alpha=1.0, iterations=ALS_ITERATIONS,
            use_cg=True, num_threads=THREADS, random_state=SEED, calculate_training_loss=False,
        )
    lr, reg = params
    return BayesianPersonalizedRanking(
        factors=FACTORS, learning_rate=lr, regularization=reg, iterations=BPR_EPOCHS,
        num_threads=THREADS, random_state=SEED,
    )


def training_matrix(kind, binary, params):
    # aisle's ALS confidence is c = 1 + alpha * r on observed cells; implicit reads the
    # matrix values as the confidence, so it gets exactly that matrix.
    if kind == "als":
        m = binary.copy()
        m.data = 1.0 + params[1] * m.data
        return m
    return binary


def main():
    global SEED
    split_dir, out_dir = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        SEED = int(sys.argv[3])
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(split_dir, "shape.json")) as f:
        shape = json.load(f)
    val_matrix, val_cases = load(split_dir, "validation", shape)
    test_matrix, test_cases = load(split_dir, "test", shape)
    val_cases = sample(val_cases, MAX_VALIDATION)
    # IMPLICIT_DEFAULTS_ONLY=1: no tuning, each model at its grid's first (default) setting,
    # as aisle's side runs without --tune (the 10-million-event log: tuning there costs hours).
    defaults_only = os.environ.get("IMPLICIT_DEFAULTS_ONLY") == "1"
    for kind, grid in [("als", ALS_GRID), ("bpr", BPR_GRID)]:
        if defaults_only:
            grid = grid[:1]
        best, best_params, trials = -1.0, grid[0], []
        for params in grid:
            model = make(kind, params)
            model.fit(training_matrix(kind, val_matrix, params), show_progress=False)
            value = ndcg10(top_lists(model, val_matrix, val_cases, 10), val_cases)
            trials.append({"params": params, "validation_ndcg@10": value})
            print(f"implicit {kind} {params}: validation ndcg@10 {value:.4f}", file=sys.stderr)
            if value > best:
                best, best_params = value, params
        model = make(kind, best_params)
        matrix = training_matrix(kind, test_matrix, best_params)
        started = time.perf_counter()
        model.fit(matrix, show_progress=False)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        lists = top_lists(model, test_matrix, test_cases, 20)
        score_seconds = time.perf_counter() - started
        path = os.path.join(out_dir, f"implicit_{kind}.txt")
        with open(path, "w") as f:
            for (case, _, _), row in zip(test_cases, lists):
                f.write(f"{case} " + " ".join(str(int(i)) for i in row if i >= 0) + "\n")
        import implicit
        with open(path + ".json", "w") as f:
            json.dump({
                "config": {"package": f"implicit {implicit.__version__}", "factors": FACTORS,
                           "iterations": ALS_ITERATIONS if kind == "als" else BPR_EPOCHS,
                           "params": best_params, "threads": THREADS, "seed": SEED, "trials": trials},
                "fit_seconds": fit_seconds,
                "score_seconds": score_seconds,
            }, f, indent=1)
        print(f"implicit {kind}: chose {best_params}, fit {fit_seconds:.2f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
