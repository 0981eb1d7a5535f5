"""What `churn score` does (summary, BG/NBD fit, Gamma-Gamma fit, P(alive),
expected purchases, expected spend and CLV over 90 days), done with Python's
lifetimes, for the end-to-end comparison in BENCHMARKS.md.

Usage: models_lifetimes.py INPUT.csv|INPUT.parquet OUT.json
Same definitions as churn, which are lifetimes' own: blank customers and
returns dropped, one purchase per customer-day, T to the as-of date, weeks of
7 days.
"""
import json
import sys
import time

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

src, out = sys.argv[1], sys.argv[2]
t0 = time.time()
if src.endswith(".parquet"):
    df = pd.read_parquet(src, columns=["order_id", "customer_id", "order_date", "amount"])
    df = df[df["customer_id"].notna()]
    df["customer_id"] = df["customer_id"].astype("int64").astype(str)
else:
    df = pd.read_csv(src, dtype={"customer_id": str, "order_id": str})
    df = df[df["customer_id"].notna() & (df["customer_id"].str.strip() != "")]
df["order_date"] = pd.to_datetime(df["order_date"]).dt.normalize()
as_of = df["order_date"].max()
df = df[df["amount"] >= 0]
summary = summary_data_from_transaction_data(
    df, "customer_id", "order_date", monetary_value_col="amount",
    observation_period_end=as_of, freq="D",
)
t1 = time.time()
weeks = summary[["recency", "T"]] / 7.0
bg = BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], weeks["recency"], weeks["T"])
t2 = time.time()
rep = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
gg = GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
t3 = time.time()
p_alive = bg.conditional_probability_alive(summary["frequency"], weeks["recency"], weeks["T"])
expected = bg.conditional_expected_number_of_purchases_up_to_time(90 / 7.0, summary["frequency"], weeks["recency"], weeks["T"])
spend = gg.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"])
clv = gg.customer_lifetime_value(bg, summary["frequency"], weeks["recency"], weeks["T"], summary["monetary_value"], time=3, freq="W", discount_rate=0.008)
t4 = time.time()
json.dump({
    "customers": int(len(summary)),
    "bgnbd": {k: float(v) for k, v in bg.params_.items()},
    "gg": {k: float(v) for k, v in gg.params_.items()},
    "seconds": {"summary": t1 - t0, "bgnbd_fit": t2 - t1, "gg_fit": t3 - t2, "scoring": t4 - t3, "total": t4 - t0},
    "mean_p_alive": float(p_alive.mean()),
    "mean_expected_purchases": float(expected.mean()),
}, open(out, "w"), indent=1)
