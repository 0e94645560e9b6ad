"""aisle's noise and privacy accounting against OpenDP's, side by side.

For each mechanism and scale: 20,000 draws from `aisle privacy noise` (seeded) and 20,000
from OpenDP's measurement on integers, a two-sample Kolmogorov-Smirnov test between them
(repeated once on fresh samples when p <= 0.01), and each sample's mean absolute value and
variance against the closed forms. Then the same
compositions through `aisle privacy epsilon` and OpenDP's composition and conversion.
Exits non-zero when a check fails; with --report PATH writes the results as Markdown.
"""

import json
import math
import subprocess
import sys

import opendp.prelude as dp

dp.enable_features("contrib")
AISLE = sys.argv[1]
REPORT = sys.argv[sys.argv.index("--report") + 1] if "--report" in sys.argv else None
N = 20_000
failures = []
rows = []


def aisle_draws(mechanism, scale, seed):
    out = subprocess.run(
        [AISLE, "privacy", "noise", "--mechanism", mechanism, "--scale", str(scale), "--count", str(N),
         "--seed", str(seed)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [int(x) for x in out.split()]


def opendp_draws(mechanism, scale):
    space = dp.atom_domain(T=int), dp.absolute_distance(T=int)
    make = dp.m.make_laplace if mechanism == "laplace" else dp.m.make_gaussian
    m = make(*space, scale=scale)
    return [m(0) for _ in range(N)]


def ks_two_sample(a, b):
    """D and the asymptotic p-value (conservative for discrete data)."""
    values = sorted(set(a) | set(b))
    ca, cb = {}, {}
    for x in a:
        ca[x] = ca.get(x, 0) + 1
    for x in b:
        cb[x] = cb.get(x, 0) + 1
    fa = fb = 0.0
    d = 0.0
    for v in values:
        fa += ca.get(v, 0) / len(a)
        fb += cb.get(v, 0) / len(b)
        d = max(d, abs(fa - fb))
    n = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(max(p, 0.0), 1.0)


def laplace_moments(scale):
    p = math.exp(-1 / scale)
    return 2 * p / (1 - p * p), 2 * p / (1 - p) ** 2


def gaussian_moments(sigma):
    r = int(12 * sigma) + 10
    w = [math.exp(-x * x / (2 * sigma * sigma)) for x in range(-r, r + 1)]
    z = sum(w)
    mae = sum(abs(x) * wx for x, wx in zip(range(-r, r + 1), w)) / z
    var = sum(x * x * wx for x, wx in zip(range(-r, r + 1), w)) / z
    return mae, var


def moments(xs):
    mean = sum(xs) / len(xs)
    return sum(abs(x) for x in xs) / len(xs), sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)


for k, (mechanism, scale) in enumerate([("laplace", 2.0), ("laplace", 10.0), ("gaussian", 3.0), ("gaussian", 8.0)]):
    # aisle's draws are seeded, so the moment checks against the formulas are the same every
    # run. OpenDP draws from the operating system, so under identical distributions the KS p
    # is uniform and falls under 0.01 one run in a hundred per row: a row fails only when a
    # second, independent pair of samples also gives p <= 0.01 (one run in 10,000).
    ours, theirs = aisle_draws(mechanism, scale, 1000 + k), opendp_draws(mechanism, scale)
    d, p = ks_two_sample(ours, theirs)
    if p <= 0.01:
        d, p = ks_two_sample(aisle_draws(mechanism, scale, 2000 + k), opendp_draws(mechanism, scale))
    mae_f, var_f = laplace_moments(scale) if mechanism == "laplace" else gaussian_moments(scale)
    (mae_o, var_o), (mae_t, var_t) = moments(ours), moments(theirs)
    rows.append((mechanism, scale, d, p, mae_f, mae_o, mae_t, var_f, var_o, var_t))
    if p <= 0.01:
        failures.append(f"{mechanism} {scale}: KS p = {p:.4f} against OpenDP")
    if abs(mae_o / mae_f - 1) > 0.03 or abs(var_o / var_f - 1) > 0.03:
        failures.append(f"{mechanism} {scale}: moments {mae_o:.3f}/{var_o:.3f} against {mae_f:.3f}/{var_f:.3f}")

space = dp.atom_domain(T=int), dp.absolute_distance(T=int)
compositions = []
lap_scales, sens = [2.0, 4.0, 0.5, 8.0], 2
ours = json.loads(subprocess.run(
    [AISLE, "privacy", "epsilon"] + sum([["--laplace", f"{s}:{sens}"] for s in lap_scales], []),
    check=True, capture_output=True, text=True).stdout)
theirs = dp.c.make_composition([dp.m.make_laplace(*space, scale=s) for s in lap_scales]).map(sens)
compositions.append(("4 discrete Laplace, scales 2, 4, 0.5, 8, sensitivity 2 (pure DP)", ours["epsilon"], theirs))
for delta in (1e-5, 1e-7):
    sigmas = [3.0, 5.0, 2.0]
    ours = json.loads(subprocess.run(
        [AISLE, "privacy", "epsilon", "--delta", str(delta)]
        + sum([["--gaussian", f"{s}:1"] for s in sigmas], []),
        check=True, capture_output=True, text=True).stdout)
    composed = dp.c.make_composition([dp.m.make_gaussian(*space, scale=s) for s in sigmas])
    theirs = dp.c.make_zCDP_to_approxDP(composed).map(1).epsilon(delta)
    compositions.append((f"3 discrete Gaussian, σ 3, 5, 2, sensitivity 1, as (ε, {delta:g})-DP", ours["epsilon"], theirs))
for what, o, t in compositions:
    if abs(o - t) > 1e-9 * max(1.0, abs(t)):
        failures.append(f"{what}: aisle epsilon {o} against OpenDP {t}")

lines = [
    "# Privacy: aisle's noise and accounting against OpenDP 0.16",
    "",
    f"Made by `scripts/privacy-peer.sh --report` ({N:,} draws a side per row; the test suite runs the",
    "same checks without writing this file). KS: two-sample Kolmogorov-Smirnov between aisle's",
    "and OpenDP's draws (asymptotic p, conservative for integer data). Formula columns: the",
    "closed forms of the discrete distribution (Laplace exactly; Gaussian summed over its support).",
    "",
    "| noise | scale | KS D | KS p | mean abs, formula | aisle | OpenDP | variance formula | aisle | OpenDP |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for m, s, d, p, mf, mo, mt, vf, vo, vt in rows:
    lines.append(f"| discrete {m} | {s:g} | {d:.4f} | {p:.3f} | {mf:.4f} | {mo:.4f} | {mt:.4f} | {vf:.3f} | {vo:.3f} | {vt:.3f} |")
lines += ["", "| composition | aisle ε | OpenDP ε |", "|---|---:|---:|"]
for what, o, t in compositions:
    lines.append(f"| {what} | {o:.12g} | {t:.12g} |")
text = "\n".join(lines) + "\n"
print(text)
if REPORT:
    with open(REPORT, "w") as f:
        f.write(text)
if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("privacy peer checks passed")
