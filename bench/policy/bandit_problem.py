#!/usr/bin/env python3
"""Builds a contextual-bandit problem from MovieLens 100K by the supervised-to-bandit conversion.

    python bench/policy/bandit_problem.py [--data DIR] [--out DIR] [--stride S] [--warm W]

The conversion follows the multi-label recipe of Bietti, Agarwal and Langford (2021), "A Contextual
Bandit Bake-off" (JMLR 22): every labelled example becomes one round, the labels become actions,
and an action earns reward 1 when it is one of the example's labels and 0 otherwise. Every action's
reward is written down (full information); a bandit learner may only look at the reward of the
action it chose.

Here an example is one rating >= 4 ("the user liked this movie"), its labels are the movie's
genres, and its context describes the user: demographics plus the genre mix of the movies the user
liked earlier. Input is the RecBole atomic-file copy of ml-100k (ml-100k.inter, ml-100k.item,
ml-100k.user; see SOURCE.md in the data folder), which carries the same rows as GroupLens' u.data,
u.item and u.user.

Outputs in --out (the contract that the Rust side reads; see problem.json for the same text):

  problem.csv      header x_0..x_{d-1},r_0..r_{K-1}; one line per round, in round-index order.
  problem.json     sizes, the feature layout, the conversion and the source.
  order_<s>.txt    s = 0..9: numpy.random.default_rng(s).permutation(n_rounds), one round index
                   per line. Positions 0..W-1 are the warm-start rounds, W.. the online rounds.
  warm_<s>.csv     columns round,action,reward,propensity: the first W rounds of order_<s>, in
                   that order, logged by a uniform-random behaviour policy, action =
                   numpy.random.default_rng(1000 + s).integers(0, K, size=W)[i] for the i-th row,
                   reward = r_action of that round, propensity = 1/K.

Only numpy is needed (numpy 1.23.5 in .cache/venv-vw; any numpy >= 1.17 gives the same draws).
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np

# The 19 genre columns of GroupLens' u.item, in that file's order (u.genre gives the same order).
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western"]
# The 21 lines of GroupLens' u.occupation, in that file's order.
OCCUPATIONS = ["administrator", "artist", "doctor", "educator", "engineer", "entertainment",
               "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
               "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
               "writer"]
# Age buckets of the MovieLens 1M README (lower bounds): <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.
AGE_LOWER = [0, 18, 25, 35, 45, 50, 56]
AGE_NAMES = ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]
SEEDS = range(10)


def read_atomic(path):
    """A RecBole atomic file: tab-separated, first line `name:type` per column."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh]
    header = [h.split(":")[0] for h in rows[0]]
    return header, rows[1:]


def age_bucket(age):
    b = 0
    for i, lo in enumerate(AGE_LOWER):
        if age >= lo:
            b = i
    return b


def fmt(v):
    """Shortest exact text for 0 and 1, four significant decimals otherwise."""
    if v == 0.0:
        return "0"
    if v == 1.0:
        return "1"
    return ("%.4f" % v).rstrip("0").rstrip(".")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(root, "..", "shared", "data", "movielens-100k"))
    ap.add_argument("--out", default=os.path.join(root, "target", "bench-policy", "bandit"))
    ap.add_argument("--stride", type=int, default=3,
                    help="keep every S-th liked rating (time order, index %% S == 0) as a round")
    ap.add_argument("--warm", type=int, default=2000, help="warm-start rounds W per seed")
    args = ap.parse_args()
    t0 = time.time()

    # Movies: genres as the u.item 0/1 vector.
    hdr, rows = read_atomic(os.path.join(args.data, "ml-100k.item"))
    ci, cc = hdr.index("item_id"), hdr.index("class")
    gidx = {g: i for i, g in enumerate(GENRES)}
    item_genres = {}
    for r in rows:
        v = np.zeros(len(GENRES))
        for g in r[cc].split():
            v[gidx[g]] = 1.0  # KeyError here means a genre outside u.item's 19
        if v.sum() == 0:
            sys.exit("movie %s has no genre" % r[ci])
        item_genres[int(r[ci])] = v

    # Users: bias, gender, age bucket, occupation.
    hdr, rows = read_atomic(os.path.join(args.data, "ml-100k.user"))
    cu, ca, cg, co = (hdr.index(c) for c in ("user_id", "age", "gender", "occupation"))
    occ_idx = {o: i for i, o in enumerate(OCCUPATIONS)}
    seen_occ = {r[co] for r in rows}
    if seen_occ != set(OCCUPATIONS):
        sys.exit("occupations differ from u.occupation: %s" % sorted(seen_occ ^ set(OCCUPATIONS)))
    n_static = 1 + 1 + len(AGE_LOWER) + len(OCCUPATIONS)
    user_static = {}
    for r in rows:
        v = np.zeros(n_static)
        v[0] = 1.0
        v[1] = 1.0 if r[cg] == "F" else 0.0
        v[2 + age_bucket(int(r[ca]))] = 1.0
        v[2 + len(AGE_LOWER) + occ_idx[r[co]]] = 1.0
        user_static[int(r[cu])] = v

    # Liked ratings in time order, ties by user then item.
    hdr, rows = read_atomic(os.path.join(args.data, "ml-100k.inter"))
    cu, ci, cr, ct = (hdr.index(c) for c in ("user_id", "item_id", "rating", "timestamp"))
    liked = sorted((int(float(r[ct])), int(r[cu]), int(r[ci]))
                   for r in rows if float(r[cr]) >= 4.0)
    n_liked = len(liked)

    K = len(GENRES)
    d = n_static + K
    hist = {}  # user -> genre counts over the user's earlier liked movies (every liked rating)
    X, R, meta = [], [], []
    for j, (ts, u, i) in enumerate(liked):
        g = item_genres[i]
        h = hist.get(u)
        if j % args.stride == 0:
            shares = h / h.sum() if h is not None else np.zeros(K)
            X.append(np.concatenate([user_static[u], shares]))
            R.append(g)
            meta.append((ts, u, i))
        hist[u] = g.copy() if h is None else h + g
    X, R = np.array(X), np.array(R, dtype=np.int64)
    n = len(X)
    W = args.warm
    if not 0 < W < n:
        sys.exit("warm %d out of range for %d rounds" % (W, n))

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "problem.csv"), "w", newline="") as fh:
        fh.write(",".join(["x_%d" % k for k in range(d)] + ["r_%d" % a for a in range(K)]) + "\n")
        for x, r in zip(X, R):
            fh.write(",".join([fmt(v) for v in x] + [str(v) for v in r]) + "\n")

    for s in SEEDS:
        order = np.random.default_rng(s).permutation(n)
        with open(os.path.join(args.out, "order_%d.txt" % s), "w") as fh:
            fh.write("".join("%d\n" % t for t in order))
        acts = np.random.default_rng(1000 + s).integers(0, K, size=W)
        with open(os.path.join(args.out, "warm_%d.csv" % s), "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["round", "action", "reward", "propensity"])
            for t, a in zip(order[:W], acts):
                w.writerow([int(t), int(a), int(R[t, a]), repr(1.0 / K)])

    names = (["bias"] + ["gender_female"] + ["age_" + a for a in AGE_NAMES]
             + ["occupation_" + o for o in OCCUPATIONS] + ["genre_share_" + g for g in GENRES])
    info = {
        "name": "movielens-100k liked-movie genre bandit",
        "n_rounds": n,
        "d": d,
        "K": K,
        "warm_rounds": W,
        "online_rounds": n - W,
        "seeds": list(SEEDS),
        "source": {
            "dataset": "MovieLens 100K (GroupLens Research, 1998; Harper & Konstan 2015, ACM TiiS)",
            "files": "RecBole atomic-file copy: ml-100k.inter, ml-100k.item, ml-100k.user "
                     "(same rows as u.data, u.item, u.user); see SOURCE.md",
            "path": os.path.abspath(args.data),
            "terms": "GroupLens terms: research use, no redistribution; keep project-internal",
        },
        "conversion": (
            "Multi-label to bandit (Bietti, Agarwal, Langford 2021, 'A Contextual Bandit "
            "Bake-off'). The %d ratings >= 4 sorted by (timestamp, user_id, item_id) form the "
            "event sequence; every %d-th of them (sequence index %% %d == 0) is a round, in the "
            "same order, so round t is event %d*t. Actions are the %d genres of u.item. The reward "
            "of action a in a round is 1 if the round's movie has genre a, else 0; all K rewards "
            "are stored (full information), a bandit learner observes only the chosen one."
            % (n_liked, args.stride, args.stride, args.stride, K)),
        "features": {
            "names": names,
            "x_0": "bias, always 1",
            "x_1": "gender: 1 if F, 0 if M",
            "x_2..x_8": "age bucket one-hot: " + ", ".join(AGE_NAMES),
            "x_9..x_29": "occupation one-hot, u.occupation order: " + ", ".join(OCCUPATIONS),
            "x_30..x_48": ("genre shares of the user's earlier liked movies: genre-tag counts over "
                           "all events (not only kept rounds) of this user strictly earlier in the "
                           "event sequence, divided by their sum (sum 1; all 0 when none); written "
                           "with 4 decimals, so sums are 1 within 1e-3. Genre order = actions"),
        },
        "actions": GENRES,
        "files": {
            "problem.csv": "header x_0..x_%d,r_0..r_%d; line t+1 is round t" % (d - 1, K - 1),
            "order_<seed>.txt": "numpy.random.default_rng(seed).permutation(n_rounds), one round "
                                "index per line; positions 0..W-1 warm start, W..n_rounds-1 online",
            "warm_<seed>.csv": "round,action,reward,propensity: row i is round order[i] (i < W), "
                               "action = numpy.random.default_rng(1000+seed).integers(0, K, size=W)"
                               "[i] (uniform behaviour policy), reward = r_action, propensity = 1/K",
        },
        "reference": {
            "uniform_mean_reward_all_rounds": float(R.mean()),
            "best_constant_action": GENRES[int(R.mean(0).argmax())],
            "best_constant_mean_reward_all_rounds": float(R.mean(0).max()),
            "mean_reward_per_action": [round(float(v), 6) for v in R.mean(0)],
        },
    }
    with open(os.path.join(args.out, "problem.json"), "w") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out)
               if f.startswith(("problem", "order_", "warm_")))
    print("%d liked ratings -> %d rounds (stride %d), d=%d, K=%d, W=%d; %s: %.2f MB in %.1f s"
          % (n_liked, n, args.stride, d, K, W, args.out, size / 1e6, time.time() - t0))


if __name__ == "__main__":
    main()
