"""The Open Bandit Pipeline (obp 0.5.7) side of aisle's off-policy-evaluation comparison.

Runs obp's published protocol for the Open Bandit Dataset sample
(examples/obd/evaluate_off_policy_estimators.py in st-tech/zr-obp, whose README prints the table
this reproduces) and writes what the Rust side needs to run the same protocol on the same rows:

  action_dist.f64 / .json  the evaluation policy's action distribution (float64, little-endian)
  runs.json                per bootstrap run: seed, CSV rows drawn, obp's estimates, relative EE
  summary.json             ground truth, mean/std relative EE, versions, protocol parameters
  rows_original.json       how obp's arrays map to the CSV's rows and columns

  .cache/venv-obp/bin/python bench/policy/obp_ope.py [--campaign all] [--behavior-policy random]
      [--n-runs 30] [--base-model logistic_regression] [--out target/bench-policy/obp]

(bench/policy/setup-obp.sh creates that venv.)

The protocol, as the example does it:
  * evaluation policy: obp's BernoulliTS(n_actions, len_list, random_state=12345,
    is_zozotown_prior=True, campaign); action distribution from compute_batch_action_dist with
    n_sim=1,000,000 (Monte Carlo over the production Beta priors; the same for every round, so
    it is tiled over the rounds);
  * ground truth: the mean click of the evaluation policy's own log (bts/<campaign>), on all rows;
  * run b = 0..n_runs-1: sample_bootstrap_bandit_feedback(random_state=b), i.e. rows
    RandomState(b).choice(arange(n), size=n, replace=True) of the timestamp-sorted log;
  * reward model: obp's RegressionModel, one base model per position, fitted with 3-fold
    cross-fitting (KFold shuffle, random_state=12345) on the bootstrap sample itself, features
    [one-hot user features (drop_first), item features of the action]; fitting_method "normal";
  * estimators: DM, IPW, SNIPW, DR, SNDR, Switch-DR and DR-os, the last two tuned by SLOPE over
    lambdas [10, 50, 100, 500, 1000, 5000, 10000, inf]; relative EE = |V_hat - V| / V.

One deliberate choice: the tuned estimators (Switch-DR, DR-os) cache the lambda they pick on
their first call (`best_hyperparam`). The example builds them once at module level and runs the
bootstraps through joblib; with its published `--n_jobs -1` each task gets its own unpickled copy
(a tuning per run), while with n_jobs=1 the first run's lambda would be reused for all runs. This
script builds fresh estimators per run (a tuning per run) and, for reference, also records what
the estimators built once would give (`tuned_once` in runs.json / summary.json).
"""

import argparse
import csv
import importlib
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import sklearn

import obp
from obp.dataset import OpenBanditDataset
from obp.ope import (
    DirectMethod,
    DoublyRobust,
    DoublyRobustWithShrinkageTuning,
    InverseProbabilityWeighting,
    OffPolicyEvaluation,
    RegressionModel,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SwitchDoublyRobustTuning,
)
from obp.policy import BernoulliTS, Random

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "open-bandit-sample"

# examples/obd/conf/hyperparams.yaml of the example (the values, restated)
BASE_MODELS = {
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression",
                            {"max_iter": 10000, "C": 100, "random_state": 12345}),
    # the example calls sklearn's GradientBoostingClassifier "lightgbm"
    "lightgbm": ("sklearn.ensemble", "GradientBoostingClassifier",
                 {"n_estimators": 30, "learning_rate": 0.01, "max_depth": 5,
                  "min_samples_leaf": 10, "random_state": 12345}),
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier",
                      {"n_estimators": 30, "max_depth": 5, "min_samples_leaf": 10,
                       "random_state": 12345}),
}
LAMBDAS = [10, 50, 100, 500, 1000, 5000, 10000, math.inf]
ESTIMATOR_ORDER = ["dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"]
TUNED = ["switch-dr", "dr-os"]
# the README's table for bts evaluated on random/all, logistic regression, 30 runs
PUBLISHED = {
    "dm": (0.156876, 0.109898), "ipw": (0.311082, 0.311170), "snipw": (0.311795, 0.334736),
    "dr": (0.292464, 0.315485), "sndr": (0.302407, 0.328434),
    "switch-dr": (0.258410, 0.160598), "dr-os": (0.159520, 0.109660),
}


def make_base_model(name):
    module, cls, params = BASE_MODELS[name]
    mod = importlib.import_module(module)
    return getattr(mod, cls)(**params), f"{module}.{cls}", params


def make_estimators():
    # fresh objects, fresh lambda lists (the tuning classes sort the list they are given in place)
    return [
        DirectMethod(),
        InverseProbabilityWeighting(),
        SelfNormalizedInverseProbabilityWeighting(),
        DoublyRobust(),
        SelfNormalizedDoublyRobust(),
        SwitchDoublyRobustTuning(lambdas=list(LAMBDAS)),
        DoublyRobustWithShrinkageTuning(lambdas=list(LAMBDAS)),
    ]


def jnum(x):
    """JSON-safe float (inf as a string)."""
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def read_csv_columns(path):
    """The log's columns as the Rust side reads them: plain CSV, correctly rounded floats."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        idx, item, pos, click, ps = [], [], [], [], []
        for row in reader:
            idx.append(int(row[0]))
            item.append(int(row[col["item_id"]]))
            pos.append(int(row[col["position"]]))
            click.append(int(row[col["click"]]))
            ps.append(float(row[col["propensity_score"]]))
    return {
        "index": np.array(idx), "item_id": np.array(item), "position": np.array(pos),
        "click": np.array(click), "propensity_score": np.array(ps, dtype=np.float64),
    }


def sample_std(xs):
    xs = np.asarray(xs, dtype=np.float64)
    return float(xs.std(ddof=1)) if xs.size > 1 else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-path", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--behavior-policy", choices=["random", "bts"], default="random")
    ap.add_argument("--evaluation-policy", choices=["bts", "random"], default="bts")
    ap.add_argument("--campaign", choices=["all", "men", "women"], default="all")
    ap.add_argument("--n-runs", type=int, default=30)
    ap.add_argument("--base-model", choices=sorted(BASE_MODELS), default="logistic_regression")
    ap.add_argument("--n-folds", type=int, default=3)
    ap.add_argument("--n-sim", type=int, default=1_000_000,
                    help="Monte Carlo draws for BernoulliTS's action distribution")
    ap.add_argument("--random-state", type=int, default=12345)
    ap.add_argument("--q-terms-runs", type=int, default=1,
                    help="write the reward model's per-round terms for the first K runs")
    ap.add_argument("--out", type=Path, default=ROOT / "target/bench-policy/obp")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    random_state = args.random_state
    np.random.seed(random_state)  # as the example does (nothing below draws from it)

    obd = OpenBanditDataset(behavior_policy=args.behavior_policy, campaign=args.campaign,
                            data_path=args.data_path)
    n_rounds, n_actions, len_list = obd.n_rounds, obd.n_actions, obd.len_list
    csv_path = args.data_path / args.behavior_policy / args.campaign / f"{args.campaign}.csv"

    # ---- how obp's arrays map to the CSV's rows --------------------------------------------
    raw = read_csv_columns(csv_path)
    assert len(raw["index"]) == n_rounds, "obp dropped or added rows"
    assert (raw["index"] == np.arange(n_rounds)).all(), "CSV's index column is not 0..n-1"
    # obp sorts by timestamp (pandas quicksort, not stable): its row i is CSV row obd_rows[i]
    obd_rows = obd.data.index.to_numpy().astype(np.int64)
    assert sorted(obd_rows.tolist()) == list(range(n_rounds))
    identity = bool((obd_rows == np.arange(n_rounds)).all())
    full = obd.obtain_batch_bandit_feedback()
    assert (full["action"] == raw["item_id"][obd_rows]).all()
    # obp ranks the position values densely; with positions {1,2,3} that is position - 1
    assert (full["position"] == raw["position"][obd_rows] - 1).all()
    assert (full["reward"] == raw["click"][obd_rows]).all()
    pscore_exact = bool((full["pscore"] == raw["propensity_score"][obd_rows]).all())
    assert np.allclose(full["pscore"], raw["propensity_score"][obd_rows], rtol=1e-15, atol=0)
    user_cols = obd.data.columns[obd.data.columns.str.contains("user_feature")]
    context_columns = pd.get_dummies(
        obd.data.loc[:, user_cols], drop_first=True).columns.tolist()
    assert len(context_columns) == obd.context.shape[1]
    item_cols = [c for c in obd.item_context.columns if c not in ("item_id", "item_feature_0")]
    assert (obd.item_context["item_id"].to_numpy() == np.arange(n_actions)).all()
    rows_original = {
        "csv": str(csv_path),
        "n_rounds": int(n_rounds),
        "n_actions": int(n_actions),
        "len_list": int(len_list),
        "obp_row_to_csv_row_identity": identity,
        "note": ("obp reads the CSV with pandas (index_col=0, the unnamed first column, which is "
                 "0..n-1 in file order), sorts by timestamp (pandas quicksort, not stable) and "
                 "drops nothing. obp's array index i is CSV data row obp_row_to_csv_row[i] "
                 "(0-based, header excluded). The bootstrap 'rows' in runs.json are CSV rows, "
                 "already mapped through this."),
        "columns": {
            "action": "item_id",
            "position": "position - 1 (obp: dense rank of position, minus 1; CSV has 1, 2, 3)",
            "reward": "click",
            "pscore": "propensity_score",
            "context": ("pandas.get_dummies(user_feature_0..3, drop_first=True) over the whole "
                        "log (before bootstrapping): for each feature in column order, one 0/1 "
                        "column per category string in sorted order, the smallest dropped; "
                        "the reward model's only use of it; the user-item_affinity columns "
                        "are not used"),
            "context_columns": context_columns,
            "action_context": ("item_context.csv: item_feature_1..3 label-encoded (sklearn "
                               "LabelEncoder, sorted unique strings -> 0.0..k-1 as floats) "
                               "then item_feature_0; row a is item_id a (file order, checked)"),
            "action_context_columns": item_cols + ["item_feature_0"],
            "reward_model_features": ("np.c_[context, action_context[action]]: "
                                      f"{len(context_columns)} + {len(item_cols) + 1} columns"),
        },
        "pscore_bit_identical_to_correctly_rounded_parse": pscore_exact,
        "obp_row_to_csv_row": None if identity else obd_rows.tolist(),
    }
    if not identity:
        rows_original["note"] += " The order differs from the file (ties in timestamp)."
    (args.out / "rows_original.json").write_text(json.dumps(rows_original, indent=1) + "\n")

    # ---- evaluation policy -----------------------------------------------------------------
    t0 = time.time()
    kwargs = dict(n_actions=n_actions, len_list=len_list, random_state=random_state)
    if args.evaluation_policy == "bts":
        kwargs.update(is_zozotown_prior=True, campaign=args.campaign)
        policy = BernoulliTS(**kwargs)
    else:
        policy = Random(**kwargs)
    single = policy.compute_batch_action_dist(n_sim=args.n_sim)  # (1, n_actions, len_list)
    t_policy = time.time() - t0
    assert single.shape == (1, n_actions, len_list)
    single2d = np.ascontiguousarray(single[0], dtype="<f8")
    single2d.tofile(args.out / "action_dist.f64")
    (args.out / "action_dist.json").write_text(json.dumps({
        "file": "action_dist.f64",
        "dtype": "float64 little-endian",
        "per_round": False,
        "shape": [int(n_actions), int(len_list)],
        "axes": ["action (item_id)", "position (0-based)"],
        "order": "row-major: value of (action a, position k) at index a * len_list + k",
        "note": ("context-free policy: the same distribution for every round; obp tiles it "
                 "over the rounds (np.tile(single, (n_rounds, 1, 1)))"),
        "policy": type(policy).__name__,
        "policy_kwargs": {k: v for k, v in kwargs.items()},
        "n_sim": args.n_sim,
        "column_sums": [float(s) for s in single2d.sum(axis=0)],
        "seconds": round(t_policy, 2),
    }, indent=1) + "\n")
    print(f"action distribution: {type(policy).__name__}, n_sim={args.n_sim}, "
          f"{t_policy:.1f}s", file=sys.stderr)

    # ---- ground truth ----------------------------------------------------------------------
    ground_truth = float(OpenBanditDataset.calc_on_policy_policy_value_estimate(
        behavior_policy=args.evaluation_policy, campaign=args.campaign,
        data_path=args.data_path))

    # ---- bootstrap runs --------------------------------------------------------------------
    base_model, base_model_name, base_model_params = make_base_model(args.base_model)
    once_estimators = {e.estimator_name: e for e in make_estimators() if e.estimator_name in TUNED}
    runs = []
    t_runs = time.time()
    for b in range(args.n_runs):
        tb = time.time()
        bf = obd.sample_bootstrap_bandit_feedback(random_state=b)
        # obp draws check_random_state(b).choice(np.arange(n), size=n, replace=True)
        idx = np.random.RandomState(b).choice(np.arange(n_rounds), size=n_rounds, replace=True)
        for key in ["action", "position", "reward", "pscore", "context"]:
            assert np.array_equal(bf[key], full[key][idx]), key
        rows = obd_rows[idx]
        assert (bf["action"] == raw["item_id"][rows]).all()
        assert (bf["position"] == raw["position"][rows] - 1).all()
        assert (bf["reward"] == raw["click"][rows]).all()
        assert np.allclose(bf["pscore"], raw["propensity_score"][rows], rtol=1e-15, atol=0)

        regression_model = RegressionModel(
            n_actions=n_actions, len_list=len_list, action_context=obd.action_context,
            base_model=make_base_model(args.base_model)[0])
        q_hat = regression_model.fit_predict(
            context=bf["context"], action=bf["action"], reward=bf["reward"],
            position=bf["position"], pscore=bf["pscore"], n_folds=args.n_folds,
            random_state=random_state)
        action_dist = np.tile(single, (bf["n_rounds"], 1, 1))
        if b < args.q_terms_runs:
            # everything DM/DR/SNDR/Switch-DR/DR-os take from the reward model, per round:
            # q_hat(x_i, a_i, k_i) and sum_a pi_e(a | k_i) q_hat(x_i, a, k_i)
            n = bf["n_rounds"]
            q_fact = q_hat[np.arange(n), bf["action"], bf["position"]]
            q_pi = (q_hat[np.arange(n), :, bf["position"]]
                    * single[0][:, bf["position"]].T).sum(axis=1)
            np.ascontiguousarray(np.c_[q_fact, q_pi], dtype="<f8").tofile(
                args.out / f"q_terms_run{b}.f64")
        estimators = make_estimators()
        ope = OffPolicyEvaluation(bandit_feedback=bf, ope_estimators=estimators)
        values = ope.estimate_policy_values(action_dist=action_dist,
                                            estimated_rewards_by_reg_model=q_hat)
        rel = ope.evaluate_performance_of_estimators(
            ground_truth_policy_value=ground_truth, action_dist=action_dist,
            estimated_rewards_by_reg_model=q_hat, metric="relative-ee")
        for name, v in values.items():
            assert math.isclose(rel[name], abs(v - ground_truth) / ground_truth,
                                rel_tol=1e-12, abs_tol=1e-15), name
        lambdas = {e.estimator_name: jnum(e.best_hyperparam) for e in estimators
                   if e.estimator_name in TUNED}
        # the example's estimators built once (its n_jobs=1 behaviour): first run's lambda reused
        once = {}
        for name, est in once_estimators.items():
            v = est.estimate_policy_value(
                reward=bf["reward"], action=bf["action"], position=bf["position"],
                pscore=bf["pscore"], action_dist=action_dist,
                estimated_rewards_by_reg_model=q_hat)
            once[name] = {"estimate": float(v), "lambda": jnum(est.best_hyperparam),
                          "relative_ee": abs(float(v) - ground_truth) / ground_truth}
        runs.append({
            "seed": b,
            "n_rows": int(n_rounds),
            "estimates": {k: float(values[k]) for k in ESTIMATOR_ORDER},
            "relative_ee": {k: float(rel[k]) for k in ESTIMATOR_ORDER},
            "tuned_lambda": lambdas,
            "tuned_once": once,
            "clicks": int(bf["reward"].sum()),
            "seconds": round(time.time() - tb, 2),
            "rows": rows.tolist(),
        })
        print(f"run {b:2d}: " + " ".join(f"{k}={rel[k]:.4f}" for k in ESTIMATOR_ORDER)
              + f"  ({time.time() - tb:.1f}s)", file=sys.stderr)
    t_runs = time.time() - t_runs

    # ---- summary ---------------------------------------------------------------------------
    table = {}
    for k in ESTIMATOR_ORDER:
        xs = [r["relative_ee"][k] for r in runs]
        table[k] = {"mean": float(np.mean(xs)), "std": sample_std(xs)}
    once_table = {}
    for k in TUNED:
        xs = [r["tuned_once"][k]["relative_ee"] for r in runs]
        once_table[k] = {"mean": float(np.mean(xs)), "std": sample_std(xs)}
    published_setting = (args.behavior_policy == "random" and args.evaluation_policy == "bts"
                         and args.campaign == "all" and args.n_runs == 30
                         and args.base_model == "logistic_regression" and args.n_folds == 3
                         and args.n_sim == 1_000_000 and random_state == 12345)
    match = {k: round(table[k]["mean"], 6) == PUBLISHED[k][0] for k in ESTIMATOR_ORDER}
    summary = {
        "ground_truth": ground_truth,
        "ground_truth_source": (f"mean click of {args.evaluation_policy}/{args.campaign}/"
                                f"{args.campaign}.csv, all rows (on-policy estimate)"),
        "relative_ee": table,
        "std_note": "sample standard deviation (ddof=1) over runs, as pandas describe() prints",
        "tuned_once_relative_ee": once_table,
        "published_readme": ({k: {"mean": m, "std": s} for k, (m, s) in PUBLISHED.items()}
                             if published_setting else None),
        "matches_published_mean_6dp": match if published_setting else None,
        "published_note": (
            "The README's table was produced by obp 0.5.1 (commit 12daeaa, 2022-01-12; "
            "scikit-learn 0.24, scipy 1.7 era). The model-free estimators (ipw, snipw) depend only "
            "on the action distribution, the bootstrap rows and the ground truth, and match to "
            "every printed digit; the model-based ones (dm, dr, sndr, switch-dr, dr-os) also go "
            "through the logistic-regression fits, whose L-BFGS stopping point differs slightly "
            "between library versions, and differ from the table in the 5th significant digit."
        ) if published_setting else None,
        "versions": {"obp": obp.__version__, "numpy": np.__version__,
                     "pandas": pd.__version__,
                     "scikit-learn": sklearn.__version__, "scipy": scipy.__version__,
                     "python": platform.python_version()},
        "protocol": {
            "source": "st-tech/zr-obp examples/obd/evaluate_off_policy_estimators.py",
            "data_path": str(args.data_path),
            "behavior_policy": args.behavior_policy,
            "campaign": args.campaign,
            "evaluation_policy": args.evaluation_policy,
            "evaluation_policy_kwargs": kwargs,
            "n_sim": args.n_sim,
            "n_runs": args.n_runs,
            "bootstrap": ("run b: obd.sample_bootstrap_bandit_feedback(random_state=b) = rows "
                          "np.random.RandomState(b).choice(np.arange(n_rounds), size=n_rounds, "
                          "replace=True) of obp's (timestamp-sorted) arrays"),
            "regression_model": {
                "class": "obp.ope.RegressionModel",
                "fitting_method": "normal",
                "base_model": base_model_name,
                "base_model_params": base_model_params,
                "one_model_per_position": True,
                "features": "np.c_[context, action_context[action]]",
                "fit_on": "the bootstrap sample (duplicates and all)",
                "n_folds": args.n_folds,
                "cross_fitting": ("sklearn KFold(n_splits=n_folds, shuffle=True, "
                                  f"random_state={random_state}) over the bootstrap sample's "
                                  "rows; each fold's q_hat comes from the models fitted on the "
                                  "other folds; prediction = predict_proba[:, 1] for every "
                                  "(action, position)"),
            },
            "estimators": {
                "dm": "DirectMethod()",
                "ipw": "InverseProbabilityWeighting() (lambda_=inf, no clipping)",
                "snipw": "SelfNormalizedInverseProbabilityWeighting()",
                "dr": "DoublyRobust() (lambda_=inf)",
                "sndr": "SelfNormalizedDoublyRobust()",
                "switch-dr": {"class": "SwitchDoublyRobustTuning", "lambdas": [jnum(x) for x in LAMBDAS],
                              "tuning_method": "slope", "delta": 0.1,
                              "lambdas_sorted": "descending (in place)"},
                "dr-os": {"class": "DoublyRobustWithShrinkageTuning",
                          "lambdas": [jnum(x) for x in LAMBDAS], "tuning_method": "slope",
                          "delta": 0.1, "lambdas_sorted": "ascending (in place)"},
            },
            "tuning_per_run": True,
            "metric": "relative-ee = |V_hat - V| / V",
            "random_state": random_state,
        },
        "seconds": {"action_dist": round(t_policy, 1), "runs": round(t_runs, 1),
                    "total": round(time.time() - t_start, 1)},
    }
    summary["q_terms_files"] = {
        "files": [f"q_terms_run{b}.f64" for b in range(min(args.q_terms_runs, args.n_runs))],
        "dtype": "float64 little-endian", "shape": [int(n_rounds), 2],
        "columns": ["q_hat(x_i, a_i, k_i) (factual)",
                    "sum_a pi_e(a|k_i) q_hat(x_i, a, k_i) (DM term)"],
        "rows": "bootstrap order of that run (row i is CSV row runs[b].rows[i])",
        "why": ("obp's q_hat depends on where sklearn's L-BFGS stops (a fully converged fit "
                "moves DM's relative EE in the 3rd significant digit), so the model-based "
                "estimators can be matched exactly only given obp's own q_hat terms"),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    with open(args.out / "runs.json", "w") as f:
        f.write("[\n")
        for i, r in enumerate(runs):
            f.write(json.dumps(r, separators=(",", ":")) + (",\n" if i + 1 < len(runs) else "\n"))
        f.write("]\n")

    print("=" * 44)
    print(f"{args.evaluation_policy} evaluated on {args.behavior_policy}/{args.campaign}, "
          f"{args.n_runs} runs, {args.base_model}; ground truth {ground_truth:.6f}")
    print("-" * 44)
    print(f"{'':10s} {'mean':>9s} {'std':>9s}" + ("   published" if published_setting else ""))
    for k in ESTIMATOR_ORDER:
        line = f"{k:10s} {table[k]['mean']:9.6f} {table[k]['std']:9.6f}"
        if published_setting:
            line += f"   {PUBLISHED[k][0]:.6f} {'ok' if match[k] else 'DIFFERS'}"
        print(line)
    for k in TUNED:
        print(f"{k + '*':10s} {once_table[k]['mean']:9.6f} {once_table[k]['std']:9.6f}"
              "   (* estimators built once: first run's lambda reused)")
    print("=" * 44)
    print(f"wrote {args.out}  ({time.time() - t_start:.0f}s)")


if __name__ == "__main__":
    main()
