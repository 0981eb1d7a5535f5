"""The RFM table of `churn rfm` (default flags), computed by polars (Python).

Usage: rfm_polars.py INPUT.csv OUTPUT.csv
"""
import sys

import polars as pl
from peers import SEGMENTS, polars_tx

src, out = sys.argv[1], sys.argv[2]
QS = [0.2, 0.4, 0.6, 0.8]

tx = polars_tx(src)
buy = pl.col("amount") > 0
base = (
    tx.group_by("cid")
    .agg(
        pl.col("d").filter(buy).min().alias("first_purchase"),
        pl.col("d").filter(buy).max().alias("last_purchase"),
        pl.col("order_id").filter(buy).n_unique().alias("frequency"),
        pl.col("amount").sum().alias("monetary"),
        pl.col("d").max().alias("dmax"),
    )
    .with_columns(pl.col("dmax").max().alias("asof"))
    .filter(pl.col("frequency") > 0)
    .with_columns((pl.col("asof") - pl.col("last_purchase")).dt.total_days().alias("recency_days"))
    .collect()
)


def cuts(col):
    return [base[col].quantile(q, interpolation="linear") for q in QS]


def up(col):
    return 1 + pl.sum_horizontal([(pl.col(col) > c).cast(pl.Int32) for c in cuts(col)])


r = 5 - pl.sum_horizontal([(pl.col("recency_days") > c).cast(pl.Int32) for c in cuts("recency_days")])
res = base.with_columns(r.alias("r_score"), up("frequency").alias("f_score"), up("monetary").alias("m_score"))
seg = pl.lit("Others")
for name, rr, ff, mm in reversed(SEGMENTS):
    cond = (
        pl.col("r_score").is_between(*rr) & pl.col("f_score").is_between(*ff) & pl.col("m_score").is_between(*mm)
    )
    seg = pl.when(cond).then(pl.lit(name)).otherwise(seg)
res = (
    res.with_columns(
        (pl.col("r_score").cast(pl.Utf8) + pl.col("f_score").cast(pl.Utf8) + pl.col("m_score").cast(pl.Utf8)).alias(
            "rfm_score"
        ),
        seg.alias("segment"),
    )
    .rename({"cid": "customer_id"})
    .select(
        "customer_id", "first_purchase", "last_purchase", "recency_days", "frequency", "monetary",
        "r_score", "f_score", "m_score", "rfm_score", "segment",
    )
    .sort([pl.col("customer_id").str.len_bytes(), pl.col("customer_id")])
)
res.write_csv(out)
