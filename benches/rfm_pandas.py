"""The RFM table of `churn rfm` (default flags), computed by pandas.

Usage: rfm_pandas.py INPUT.csv|INPUT.parquet OUTPUT.csv
"""
import sys

import numpy as np
import pandas as pd
from peers import SEGMENTS, pandas_tx

src, out = sys.argv[1], sys.argv[2]
QS = [0.2, 0.4, 0.6, 0.8]

tx = pandas_tx(src)
asof = tx["d"].max()
buys = tx[tx["amount"] > 0].groupby("cid")
base = pd.DataFrame(
    {
        "first_purchase": buys["d"].min(),
        "last_purchase": buys["d"].max(),
        "frequency": buys["order_id"].nunique(),
    }
)
base["monetary"] = tx.groupby("cid")["amount"].sum().reindex(base.index)
base["recency_days"] = (asof - base["last_purchase"]).dt.days


def cuts(col):
    return [base[col].quantile(q, interpolation="linear") for q in QS]


def exceeds(col):
    v = base[col].to_numpy()
    return sum((v > c).astype(np.int32) for c in cuts(col))


base["r_score"] = 5 - exceeds("recency_days")
base["f_score"] = 1 + exceeds("frequency")
base["m_score"] = 1 + exceeds("monetary")
segment = np.full(len(base), "Others", dtype=object)
r, f, m = (base[c].to_numpy() for c in ("r_score", "f_score", "m_score"))
for name, rr, ff, mm in reversed(SEGMENTS):
    hit = (r >= rr[0]) & (r <= rr[1]) & (f >= ff[0]) & (f <= ff[1]) & (m >= mm[0]) & (m <= mm[1])
    segment = np.where(hit, name, segment)
base["segment"] = segment
base["rfm_score"] = base["r_score"].astype(str) + base["f_score"].astype(str) + base["m_score"].astype(str)
for c in ("first_purchase", "last_purchase"):
    base[c] = base[c].dt.strftime("%Y-%m-%d")
res = base.reset_index().rename(columns={"cid": "customer_id"})
res = res.assign(_len=res["customer_id"].str.len()).sort_values(["_len", "customer_id"], kind="stable")
cols = ["customer_id", "first_purchase", "last_purchase", "recency_days", "frequency", "monetary",
        "r_score", "f_score", "m_score", "rfm_score", "segment"]
res[cols].to_csv(out, index=False, float_format=None)
