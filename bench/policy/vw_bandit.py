#!/usr/bin/env python3
"""Vowpal Wabbit contextual-bandit explorers on the problem written by bandit_problem.py.

    bash bench/policy/setup-vw.sh
    .cache/venv-vw/bin/python bench/policy/vw_bandit.py [--out DIR] [--seeds 0,1,2,3,4]
        [--explorers squarecb_g10,...] [--variants cold,warm] [--max-online N]

For every seed s, explorer and variant (cold: no warm start; warm: first learn from warm_<s>.csv)
it runs one VW learner over the online rounds order_<s>[W:] and writes vw_results.json into the
problem's folder (--out), then prints mean and standard deviation over seeds.

Protocol of one run (the contract the Rust side mirrors):
  * VW: `--cb_explore_adf -q sa --quiet --random_seed <s>` plus the explorer's own arguments.
    One multi-line example per round: a shared example `shared |s x_j:v ...` holding the context's
    non-zero entries, then one example `|a a<k>` per action k = 0..K-1 (in action order). With
    -q sa every action gets its own linear model over the context (x_0 = 1 gives it a bias).
  * warm variant: for each row (round, action, reward, propensity) of warm_<s>.csv, in file order,
    learn the round's example with the cb_adf label `0:<cost>:<propensity>` on action `action`'s
    line, cost = -reward. Nothing is predicted or sampled there.
  * online, for i = W..n_rounds-1, t = order_<s>[i]: pmf = predict(example of t) (VW returns the
    probabilities indexed by action); u = rng.random() with rng = numpy.random.default_rng(2000+s),
    one draw per round; action = first a with u < cumsum(pmf / sum(pmf))[a] (K-1 if none); reward =
    r_action of round t; learn the example with label `0:<-reward>:<pmf[action]>` on that action.
  * recorded: total online reward, its mean over the n_online rounds, the mean over the last
    n_online // 10 rounds ("final"), the cumulative reward after every 1,000 online rounds, the mean
    expected reward sum_a pmf[a] r_a (free of the sampling noise), and wall seconds.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import vowpalwabbit
from vowpalwabbit import pyvw

EXPLORERS = {
    "squarecb_g10": "--squarecb --gamma_scale 10",
    "squarecb_g100": "--squarecb --gamma_scale 100",
    "squarecb_g1000": "--squarecb --gamma_scale 1000",
    "greedy": "--epsilon 0",
    "epsilon_0.05": "--epsilon 0.05",
}
VARIANTS = ["cold", "warm"]
CHECKPOINT = 1000


def vw_args(explorer, seed):
    return "--cb_explore_adf -q sa --quiet --random_seed %d %s" % (seed, EXPLORERS[explorer])


def shared_lines(X):
    out = []
    for x in X:
        nz = np.nonzero(x)[0]
        out.append("shared |s " + " ".join("x_%d:%s" % (j, repr(float(x[j]))) for j in nz))
    return out


def cost_text(reward):
    return "%g" % (-float(reward)) if reward else "0"


def run_one(shared, R, order, warm, W, explorer, variant, seed):
    K = R.shape[1]
    actions = ["|a a%d" % k for k in range(K)]
    args = vw_args(explorer, seed)
    t0 = time.time()
    vw = pyvw.Workspace(args)
    if variant == "warm":
        for t, a, r, p in warm:
            ex = [shared[t]] + actions
            ex[1 + a] = "0:%s:%s %s" % (cost_text(r), repr(p), actions[a])
            vw.learn(ex)
    rng = np.random.default_rng(2000 + seed)
    online = order[W:]
    n_on = len(online)
    rewards = np.zeros(n_on)
    expected = np.zeros(n_on)
    for i, t in enumerate(online):
        ex = [shared[t]] + actions
        pmf = np.asarray(vw.predict(ex), dtype=np.float64)
        if pmf.shape != (K,):
            sys.exit("unexpected prediction %r" % (pmf,))
        cdf = np.cumsum(pmf / pmf.sum())
        u = rng.random()
        a = int(np.searchsorted(cdf, u, side="right"))
        a = min(a, K - 1)
        r = int(R[t, a])
        rewards[i] = r
        expected[i] = float(pmf @ R[t]) / pmf.sum()
        ex[1 + a] = "0:%s:%s %s" % (cost_text(r), repr(float(pmf[a])), actions[a])
        vw.learn(ex)
    full_args = vw.get_arguments()
    vw.finish()
    wall = time.time() - t0
    cum = np.cumsum(rewards)
    n_final = n_on // 10
    return {
        "explorer": explorer,
        "variant": variant,
        "seed": seed,
        "vw_args": args,
        "vw_args_resolved": " ".join(full_args) if isinstance(full_args, list) else str(full_args),
        "online_rounds": n_on,
        "warm_rounds": W if variant == "warm" else 0,
        "total_reward": float(cum[-1]),
        "mean_reward": float(cum[-1] / n_on),
        "final_rounds": n_final,
        "final_mean_reward": float(rewards[-n_final:].mean()),
        "mean_expected_reward": float(expected.mean()),
        "cumulative_reward_every_1000": [float(cum[k - 1]) for k in
                                         range(CHECKPOINT, n_on + 1, CHECKPOINT)],
        "wall_seconds": round(wall, 3),
    }


def references(R, order, W):
    online = order[W:]
    Ro = R[online]
    n_final = len(online) // 10
    return {
        "uniform_random_mean_reward": float(Ro.mean()),
        "uniform_random_final_mean_reward": float(Ro[-n_final:].mean()),
        "best_constant_action_in_hindsight": int(Ro.mean(0).argmax()),
        "best_constant_mean_reward": float(Ro.mean(0).max()),
        "best_constant_final_mean_reward": float(Ro[-n_final:].mean(0).max()),
    }


def summarise(runs):
    rows = {}
    for r in runs:
        rows.setdefault((r["explorer"], r["variant"]), []).append(r)
    out = []
    for (e, v), rs in rows.items():
        def ms(key):
            vals = np.array([x[key] for x in rs], dtype=float)
            return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out.append({"explorer": e, "variant": v, "seeds": [x["seed"] for x in rs],
                    "mean_reward": ms("mean_reward"), "final_mean_reward": ms("final_mean_reward"),
                    "mean_expected_reward": ms("mean_expected_reward"),
                    "wall_seconds": ms("wall_seconds")})
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(root, "target", "bench-policy", "bandit"))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--explorers", default=",".join(EXPLORERS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--max-online", type=int, default=0,
                    help="smoke tests only: stop after this many online rounds")
    ap.add_argument("--results", default="vw_results.json", help="file name inside --out")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s != ""]
    explorers = [e for e in args.explorers.split(",") if e]
    variants = [v for v in args.variants.split(",") if v]
    for e in explorers:
        if e not in EXPLORERS:
            sys.exit("unknown explorer %s (have %s)" % (e, ", ".join(EXPLORERS)))
    for v in variants:
        if v not in VARIANTS:
            sys.exit("unknown variant %s" % v)

    with open(os.path.join(args.out, "problem.json")) as fh:
        info = json.load(fh)
    d, K, W = info["d"], info["K"], info["warm_rounds"]
    data = np.loadtxt(os.path.join(args.out, "problem.csv"), delimiter=",", skiprows=1)
    if data.shape != (info["n_rounds"], d + K):
        sys.exit("problem.csv has shape %s, problem.json says %d x %d"
                 % (data.shape, info["n_rounds"], d + K))
    X, R = data[:, :d], data[:, d:].astype(np.int64)
    shared = shared_lines(X)

    t_all = time.time()
    runs, refs = [], {}
    result_path = os.path.join(args.out, args.results)
    for seed in seeds:
        order = np.loadtxt(os.path.join(args.out, "order_%d.txt" % seed), dtype=np.int64)
        if args.max_online:
            order = order[:W + args.max_online]
        w = np.loadtxt(os.path.join(args.out, "warm_%d.csv" % seed), delimiter=",", skiprows=1)
        warm = [(int(t), int(a), int(r), float(p)) for t, a, r, p in w]
        if [t for t, _, _, _ in warm] != [int(t) for t in order[:W]]:
            sys.exit("warm_%d.csv does not follow order_%d.txt" % (seed, seed))
        refs[str(seed)] = references(R, order, W)
        for e in explorers:
            for v in variants:
                res = run_one(shared, R, order, warm, W, e, v, seed)
                runs.append(res)
                print("seed %d %-15s %-4s mean %.4f final %.4f expected %.4f  %.1f s"
                      % (seed, e, v, res["mean_reward"], res["final_mean_reward"],
                         res["mean_expected_reward"], res["wall_seconds"]), flush=True)
                doc = {
                    "peer": "vowpalwabbit",
                    "vw_version": vowpalwabbit.__version__,
                    "numpy_version": np.__version__,
                    "problem": {k: info[k] for k in ("name", "n_rounds", "d", "K", "warm_rounds",
                                                     "online_rounds")},
                    "protocol": __doc__.split("Protocol of one run")[1].strip(),
                    "explorers": {k: EXPLORERS[k] for k in explorers},
                    "base_args": "--cb_explore_adf -q sa --quiet --random_seed <seed>",
                    "max_online": args.max_online or None,
                    "references_per_seed": refs,
                    "summary_mean_std_over_seeds": summarise(runs),
                    "runs": runs,
                    "total_wall_seconds": round(time.time() - t_all, 1),
                }
                tmp = result_path + ".tmp"
                with open(tmp, "w") as fh:
                    json.dump(doc, fh, indent=1)
                    fh.write("\n")
                os.replace(tmp, result_path)

    print()
    print("VW %s, %d online rounds, seeds %s (mean +- sample std over seeds)"
          % (vowpalwabbit.__version__, len(order) - W, ",".join(map(str, seeds))))
    print("%-15s %-5s %-17s %-17s %-17s %s" % ("explorer", "start", "mean reward", "final (last 10%)",
                                               "expected reward", "wall s"))
    for row in summarise(runs):
        print("%-15s %-5s %.4f +- %.4f   %.4f +- %.4f   %.4f +- %.4f   %.1f"
              % (row["explorer"], row["variant"], *row["mean_reward"], *row["final_mean_reward"],
                 *row["mean_expected_reward"], row["wall_seconds"][0]))
    ref = refs[str(seeds[0])]
    print("reference (seed %d): uniform random %.4f, best constant action %d in hindsight %.4f"
          % (seeds[0], ref["uniform_random_mean_reward"], ref["best_constant_action_in_hindsight"],
             ref["best_constant_mean_reward"]))
    print("total wall %.1f s; wrote %s" % (time.time() - t_all, result_path))


if __name__ == "__main__":
    main()
