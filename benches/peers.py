"""What the peer scripts share: how the generated export is read (blank
customers dropped, dates as calendar days) and the default segment table."""
import duckdb

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


def duckdb_connection():
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    return con


def duckdb_tx(src):
    """A SQL CTE body selecting (cid, d, amount, order_id) from the export (CSV or Parquet)."""
    if src.endswith(".parquet"):
        return f"""
  SELECT trim(CAST(customer_id AS VARCHAR)) AS cid, CAST(order_date AS DATE) AS d, amount,
         CAST(order_id AS VARCHAR) AS order_id
  FROM read_parquet('{src}')
  WHERE customer_id IS NOT NULL AND trim(CAST(customer_id AS VARCHAR)) <> ''"""
    return f"""
  SELECT trim(customer_id) AS cid, CAST(order_date AS DATE) AS d, amount, order_id
  FROM read_csv('{src}', header = true,
       columns = {{'order_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'order_date': 'TIMESTAMP', 'amount': 'DOUBLE'}})
  WHERE customer_id IS NOT NULL AND trim(customer_id) <> ''"""


def polars_tx(src):
    """A lazy frame of (cid, d, amount, order_id, ...) from the export (CSV or Parquet)."""
    import polars as pl

    if src.endswith(".parquet"):
        frame = pl.scan_parquet(src).with_columns(
            pl.col("customer_id").cast(pl.Utf8).str.strip_chars().alias("cid"),
            pl.col("order_date").dt.date().alias("d"),
            pl.col("order_id").cast(pl.Utf8),
        )
    else:
        frame = pl.scan_csv(
            src, schema_overrides={"customer_id": pl.Utf8, "order_id": pl.Utf8, "order_date": pl.Utf8}
        ).with_columns(
            pl.col("customer_id").str.strip_chars().alias("cid"),
            pl.col("order_date").str.to_datetime("%Y-%m-%d %H:%M:%S").dt.date().alias("d"),
        )
    return frame.filter(pl.col("cid").is_not_null() & (pl.col("cid") != ""))


def pandas_tx(src):
    """A DataFrame of (cid, d, amount, order_id) from the export (CSV or Parquet);
    d is the calendar day as a datetime64 at midnight."""
    import pandas as pd

    if src.endswith(".parquet"):
        df = pd.read_parquet(src, columns=["order_id", "customer_id", "order_date", "amount"])
        df = df[df["customer_id"].notna()]
        df["cid"] = df["customer_id"].astype("int64").astype(str)
        df["d"] = df["order_date"].dt.normalize()
        df["order_id"] = df["order_id"].astype(str)
    else:
        df = pd.read_csv(
            src, dtype={"order_id": str, "customer_id": str, "order_date": str, "amount": "float64"}
        )
        df["cid"] = df["customer_id"].str.strip()
        df = df[df["cid"].notna() & (df["cid"] != "")].copy()
        df["d"] = pd.to_datetime(df["order_date"], format="%Y-%m-%d %H:%M:%S").dt.normalize()
    return df[["cid", "d", "amount", "order_id"]]
