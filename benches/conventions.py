"""churn's customer summary and model fits against Python's lifetimes and
the published CDNOW tables: the check that churn's numbers are the field's.

Usage (what benches/compare.sh's virtualenv has: lifetimes, pandas):
    benches/.venv/bin/python benches/conventions.py --churn target/release/churn \
        --generate target/release/examples/generate [--rows 200000] [--update BENCHMARKS.md]
The engine suite runs it too (tests/cli.rs, in the tests' virtualenv).

1. A generated export with every case the conventions decide (purchases on
   one day, purchases on the as-of date, free orders of amount 0, returns,
   blank customer ids) is summarised by churn (`churn score --unit day`) and
   by lifetimes' summary_data_from_transaction_data(observation_period_end=
   as-of, freq='D') after the peer's usual preparation (blank ids and
   returns removed): (x, t_x, T, monetary_avg) must agree row for row.
2. BG/NBD, MBG/NBD and Pareto/NBD are fitted by churn (`churn fit`) and by
   lifetimes' fitters (tight tolerances) on that summary in weeks:
   parameters within 1e-4 relative; P(alive) and expected purchases over
   the horizon from each tool's own fit within 1e-6 and 1e-5.
3. churn fits the CDNOW sample (the 2,357 customers lifetimes ships, raw
   transactions, 39-week calibration to 1997-09-30): the published
   estimates of Fader, Hardie & Lee (2005) and their log-likelihoods.

Exits 1 with the disagreements when any check fails.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile

import lifetimes
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import summary_data_from_transaction_data

ap = argparse.ArgumentParser()
ap.add_argument("--churn", required=True)
ap.add_argument("--generate", required=True, help="the bundled generator (examples/generate.rs), built")
ap.add_argument("--rows", type=int, default=200_000)
ap.add_argument("--horizon-days", type=int, default=90)
# Inside the generator's acquisition window (its first 52 weeks), so that
# some customers first buy on the as-of date.
ap.add_argument("--as-of", default="2023-10-01")
ap.add_argument("--update", help="write the result table into this Markdown file")
args = ap.parse_args()

failures = []
lines = []


def check(what, ok, detail):
    lines.append(f"| {what} | {detail} | {'pass' if ok else 'FAIL'} |")
    if not ok:
        failures.append(f"{what}: {detail}")


def churn(*argv):
    out = subprocess.run([args.churn, *argv, "-q"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"churn {' '.join(argv)} failed: {out.stderr.strip()}")
    return out.stdout


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


work = tempfile.mkdtemp(prefix="churn-conventions-")
data = os.path.join(work, "tx.csv")
subprocess.run(
    [args.generate, "--rows", str(args.rows), "--seed", "20", "--zero-rate", "0.03", "-o", data],
    check=True, capture_output=True,
)

# --- 1. the summary, row for row -------------------------------------------
raw = pd.read_csv(data, dtype={"customer_id": str, "order_id": str})
raw["day"] = pd.to_datetime(raw["order_date"]).dt.normalize()
as_of = pd.Timestamp(args.as_of)
raw = raw[raw["day"] <= as_of]
blank = raw["customer_id"].isna() | (raw["customer_id"].str.strip() == "")
df = raw[~blank & (raw["amount"] >= 0)].copy()
df["customer_id"] = df["customer_id"].str.strip()
per_day = df.groupby(["customer_id", "day"]).size()
cases = {
    "blank ids": int(blank.sum()),
    "returns": int((raw["amount"] < 0).sum()),
    "free orders (amount 0)": int((df["amount"] == 0).sum()),
    "customer-days with 2+ purchases": int((per_day > 1).sum()),
    "purchases on the as-of date": int((df["day"] == as_of).sum()),
    "customers first buying on the as-of date": int((df.groupby("customer_id")["day"].min() == as_of).sum()),
}
for k, v in cases.items():
    if v == 0:
        sys.exit(f"the generated export has no {k}: the check would prove nothing")

peer = summary_data_from_transaction_data(
    df, "customer_id", "day", monetary_value_col="amount", observation_period_end=as_of, freq="D"
)
ours = pd.read_csv(io.StringIO(churn("score", data, "--as-of", args.as_of, "--unit", "day")),
                   dtype={"customer_id": str})
ours = ours.set_index("customer_id").sort_index()
peer = peer.sort_index()
same_ids = list(ours.index) == list(peer.index)
check("customers", same_ids, f"churn {len(ours):,}, lifetimes {len(peer):,}")
if same_ids:
    for label, ours_col, peer_col in [
        ("x (frequency)", "frequency", "frequency"),
        ("t_x (recency), days", "recency", "recency"),
        ("T, days", "T", "T"),
    ]:
        differ = int((ours[ours_col].to_numpy() != peer[peer_col].to_numpy()).sum())
        check(label, differ == 0, f"{differ} of {len(ours):,} rows differ")
    m_diff = np.abs(ours["monetary_avg"].to_numpy() - peer["monetary_value"].to_numpy())
    m_rel = np.max(m_diff / np.maximum(np.abs(peer["monetary_value"].to_numpy()), 1e-9))
    check("monetary_avg", m_rel < 1e-9, f"largest relative difference {m_rel:.1e}")

# --- 2. the fits, on that summary in weeks ----------------------------------
x, t_x, T = peer["frequency"], peer["recency"] / 7.0, peer["T"] / 7.0
horizon = args.horizon_days / 7.0


def tight_fit(Fitter, *data, **opts):
    """lifetimes' fit at the tightest tolerance its optimizer reaches (BFGS
    stops with a precision-loss error below some tolerance, data-dependent)."""
    for tol in [1e-11, 1e-10, 1e-9, 1e-8, 1e-7]:
        try:
            return Fitter(penalizer_coef=0.0).fit(*data, tol=tol, **opts)
        except lifetimes.utils.ConvergenceError:
            continue
    sys.exit(f"lifetimes' {Fitter.__name__} did not converge")


fitters = {
    "bgnbd": (BetaGeoFitter, ["r", "alpha", "a", "b"], {}),
    "mbgnbd": (ModifiedBetaGeoFitter, ["r", "alpha", "a", "b"], {}),
    "pnbd": (ParetoNBDFitter, ["r", "alpha", "s", "beta"], {"maxiter": 50000}),
}
for model, (Fitter, names, opts) in fitters.items():
    fit = json.loads(churn("fit", data, "--as-of", args.as_of, "--model", model, "--json"))
    lt = tight_fit(Fitter, x, t_x, T, **opts)
    worst = max(rel(fit["params"][n], lt.params_[n]) for n in names)
    shown = ", ".join(f"{n} {fit['params'][n]:.6g}/{lt.params_[n]:.6g}" for n in names)
    check(f"{model} parameters (churn/lifetimes)", worst < 1e-4, f"{shown}; largest relative difference {worst:.1e}")
    scored = pd.read_csv(
        io.StringIO(churn("score", data, "--as-of", args.as_of, "--model", model,
                          "--horizon", f"{args.horizon_days}d")),
        dtype={"customer_id": str},
    ).set_index("customer_id").sort_index()
    if not same_ids:
        continue
    alive = lt.conditional_probability_alive(x, t_x, T)
    expected = lt.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, T)
    d_alive = float(np.max(np.abs(scored["p_alive"].to_numpy() - np.asarray(alive))))
    d_exp = float(np.max(np.abs(scored["expected_purchases"].to_numpy() - np.asarray(expected))))
    check(f"{model} P(alive), each tool's own fit", d_alive < 1e-6, f"largest difference {d_alive:.1e}")
    check(f"{model} expected purchases in {args.horizon_days} days", d_exp < 1e-5, f"largest difference {d_exp:.1e}")

# --- 3. CDNOW: the published estimates ---------------------------------------
sample = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_sample.txt")
cd = pd.read_csv(sample, sep=r"\s+", header=None, names=["customer_id", "id2", "date", "cds", "amount"],
                 dtype={"customer_id": str, "date": str})
cdnow = os.path.join(work, "cdnow.csv")
cd[["customer_id", "date", "amount"]].to_csv(cdnow, index=False)
# (parameters, log-likelihood, customers, relative tolerance of the
# parameters: None for "to the printed digits").
published = {
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way".
    "bgnbd": ({"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}, -9582.43, 2357, None),
    # Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD
    # model". Its likelihood is flat along β (standard error 6.2): lifetimes'
    # ParetoNBDFitter at tolerance 1e-11 lands on churn's optimum to 1e-6,
    # which is 3e-4 from the printed β, so these are checked to 1e-3.
    "pnbd": ({"r": 0.5532, "alpha": 10.5763, "s": 0.6062, "beta": 11.6715}, -9594.98, 2357, 1e-3),
    # Batislam, Denizel & Filiztekin (2007) on CDNOW, as lifetimes reproduces it.
    "mbgnbd": ({"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}, None, 2357, None),
    # Fader, Hardie & Lee (2005), "RFM and CLV": the 946 repeat buyers.
    "gg": ({"p": 6.25, "q": 3.74, "gamma": 15.44}, -4055.92, 946, None),
}
for model, (want, ll, customers, tolerance) in published.items():
    fit = json.loads(churn("fit", cdnow, "--as-of", "1997-09-30", "--model", model, "--json"))
    check(f"CDNOW {model} customers", fit["customers"] == customers, f"{fit['customers']} (published {customers:,})")
    for n, v in want.items():
        got = fit["params"][n]
        if tolerance is None:
            digits = len(str(v).split(".")[1])
            ok = abs(got - v) <= 0.5 * 10 ** -digits
        else:
            ok = rel(got, v) <= tolerance
        check(f"CDNOW {model} {n}", ok, f"{got:.6f} (published {v})")
    if ll is not None:
        got = fit["log_likelihood"]
        check(f"CDNOW {model} log-likelihood", abs(got - ll) <= 0.005, f"{got:.3f} (published {ll})")

header = [
    f"Generated export: {args.rows:,} rows (seed 20, 3% free orders, 2% returns, 0.5% blank ids), as-of "
    f"{as_of.date()}; " + ", ".join(f"{k} {v:,}" for k, v in cases.items()) + ". "
    f"lifetimes {lifetimes.__version__}, pandas {pd.__version__}.",
    "",
    "| check | figures | result |",
    "|---|---|---|",
]
table = "\n".join(header + lines)
print(table)
if args.update:
    text = open(args.update).read()
    start, end = "<!-- bench:conventions -->", "<!-- /bench:conventions -->"
    block = f"{start}\n{table}\n{end}"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text += "\n" + block + "\n"
    open(args.update, "w").write(text)
if failures:
    sys.exit("disagreements:\n" + "\n".join(failures))
