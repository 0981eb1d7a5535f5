"""The table of `churn cohorts --period month` (classic retention, long
layout), computed by polars (Python). Usage: cohorts_polars.py INPUT.csv OUTPUT.csv
"""
import sys

import polars as pl
from peers import polars_tx

src, out = sys.argv[1], sys.argv[2]
tx = (
    polars_tx(src)
    .with_columns((pl.col("d").dt.year() * 12 + pl.col("d").dt.month() - 1).alias("mi"))
    .select("cid", "d", "mi", "amount", "order_id")
    .collect()
)
latest = tx["d"].max()
ai = latest.year * 12 + latest.month - 1
month_end = (pl.select(pl.lit(latest).dt.month_end()).item()) == latest
firsts = tx.filter(pl.col("amount") > 0).group_by("cid").agg(pl.col("mi").min().alias("ci"))
sizes = firsts.group_by("ci").agg(pl.len().alias("cohort_size"))
buy = pl.col("amount") > 0
cells = (
    tx.join(firsts, on="cid")
    .with_columns((pl.col("mi") - pl.col("ci")).alias("k"))
    .filter(pl.col("k") >= 0)
    .group_by("ci", "k")
    .agg(
        pl.col("cid").filter(buy).n_unique().alias("customers"),
        pl.col("order_id").filter(buy).n_unique().alias("orders"),
        pl.col("amount").sum().alias("revenue"),
    )
)
grid = sizes.with_columns(pl.int_ranges(0, ai - pl.col("ci") + 1).alias("k")).explode("k")
res = (
    grid.join(cells, on=["ci", "k"], how="left")
    .with_columns(
        pl.col("customers").fill_null(0),
        pl.col("orders").fill_null(0),
        pl.col("revenue").fill_null(0.0),
    )
    .with_columns(
        pl.date(pl.col("ci") // 12, pl.col("ci") % 12 + 1, 1).alias("cohort"),
        (pl.col("customers") / pl.col("cohort_size")).alias("retention"),
        ((pl.col("ci") + pl.col("k") == ai) & (not month_end)).alias("partial"),
    )
    .sort("ci", "k")
    .select(
        "cohort", pl.col("k").alias("period"), "cohort_size", "customers", "retention", "orders", "revenue", "partial"
    )
)
res.write_csv(out)
