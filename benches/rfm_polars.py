"""The RFM table of `churn rfm` (default flags), computed by polars (Python).

Usage: rfm_polars.py INPUT.csv OUTPUT.csv
"""
import sys

import polars as pl

src, out = sys.argv[1], sys.argv[2]
QS = [0.2, 0.4, 0.6, 0.8]
SEGMENTS = [
    ("Champions", (5, 5), (5, 5), (5, 5)),
    ("Potential Loyalist", (3, 5), (3, 5), (2, 5)),
    ("Loyal Customers", (2, 4), (2, 4), (2, 4)),
    ("Promising", (3, 4), (1, 3), (3, 5)),
    ("New Customers", (4, 5), (1, 3), (1, 5)),
    ("Can't Lose Them", (1, 2), (3, 4), (4, 5)),
    ("At Risk", (1, 2), (2, 5), (4, 5)),
    ("Need Attention", (1, 3), (3, 5), (3, 5)),
    ("About To Sleep", (2, 3), (1, 3), (1, 4)),
    ("Lost", (1, 1), (1, 5), (1, 5)),
]

tx = (
    pl.scan_csv(src, schema_overrides={"customer_id": pl.Utf8, "order_id": pl.Utf8, "order_date": pl.Utf8})
    .with_columns(
        pl.col("customer_id").str.strip_chars().alias("cid"),
        pl.col("order_date").str.to_datetime("%Y-%m-%d %H:%M:%S").dt.date().alias("d"),
    )
    .filter(pl.col("cid").is_not_null() & (pl.col("cid") != ""))
)
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
