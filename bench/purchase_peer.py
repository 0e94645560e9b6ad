"""The LightGBM peer for `aisle bench purchase`: the same exported features, split and
settings; writes test-set probabilities for aisle to score with its own metric code.

    python bench/purchase_peer.py TASK_DIR OUT_FILE
"""
import sys
import time

import lightgbm as lgb
import numpy as np


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    return data[:, :-1], data[:, -1]


def main():
    folder, out = sys.argv[1], sys.argv[2]
    x_train, y_train = load(f"{folder}/train.csv")
    x_valid, y_valid = load(f"{folder}/valid.csv")
    x_test, _ = load(f"{folder}/test.csv")
    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "max_depth": 6,
        "num_leaves": 63,
        "min_data_in_leaf": 20,
        "min_sum_hessian_in_leaf": 1e-3,
        "lambda_l2": 1.0,
        "max_bin": 255,
        "num_threads": 2,
        "verbose": -1,
        "seed": 1,
    }
    started = time.perf_counter()
    train = lgb.Dataset(x_train, y_train)
    valid = lgb.Dataset(x_valid, y_valid, reference=train)
    model = lgb.train(
        params,
        train,
        num_boost_round=500,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    seconds = time.perf_counter() - started
    probabilities = model.predict(x_test, num_iteration=model.best_iteration)
    with open(out, "w") as f:
        f.write(f"# seconds {seconds:.4f} trees {model.best_iteration}\n")
        for p in probabilities:
            f.write(f"{p:.8f}\n")
    print(f"lightgbm {lgb.__version__}: {model.best_iteration} trees in {seconds:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
