"""The RFM table of `churn rfm` (default flags), computed by DuckDB.

Same definitions as README.md: purchases are rows with amount > 0, counted as
distinct order ids; monetary is the net sum of all rows; as-of is the latest
date; scores use type-7 quantiles; segments use the default table.
Usage: rfm_duckdb.py INPUT.csv OUTPUT.csv
"""
import sys

from peers import SEGMENTS, duckdb_connection, duckdb_tx

src, out = sys.argv[1], sys.argv[2]
Q = "[0.2, 0.4, 0.6, 0.8]"


def score_up(col, q):
    return "1 + " + " + ".join(f"({col} > {q}[{k}])::INT" for k in range(1, 5))


def score_down(col, q):
    return "5 - (" + " + ".join(f"({col} > {q}[{k}])::INT" for k in range(1, 5)) + ")"


case = "CASE " + " ".join(
    f"WHEN r_score BETWEEN {r[0]} AND {r[1]} AND f_score BETWEEN {f[0]} AND {f[1]} "
    f"AND m_score BETWEEN {m[0]} AND {m[1]} THEN '{name.replace(chr(39), chr(39) * 2)}'"
    for name, r, f, m in SEGMENTS
) + " ELSE 'Others' END"

con = duckdb_connection()
con.execute(f"""
COPY (
WITH tx AS ({duckdb_tx(src)}
),
latest AS (SELECT max(d) AS a FROM tx),
agg AS (
  SELECT cid,
         min(d) FILTER (WHERE amount > 0) AS first_purchase,
         max(d) FILTER (WHERE amount > 0) AS last_purchase,
         count(DISTINCT order_id) FILTER (WHERE amount > 0) AS frequency,
         sum(amount) AS monetary
  FROM tx GROUP BY cid
),
base AS (
  SELECT cid AS customer_id, first_purchase, last_purchase,
         (SELECT a FROM latest) - last_purchase AS recency_days, frequency, monetary
  FROM agg WHERE frequency > 0
),
q AS (
  SELECT quantile_cont(recency_days, {Q}) AS rq, quantile_cont(frequency, {Q}) AS fq,
         quantile_cont(monetary, {Q}) AS mq
  FROM base
),
scored AS (
  SELECT customer_id, first_purchase, last_purchase, recency_days, frequency, monetary,
         {score_down('recency_days', 'rq')} AS r_score,
         {score_up('frequency', 'fq')} AS f_score,
         {score_up('monetary', 'mq')} AS m_score
  FROM base, q
)
SELECT *, r_score::VARCHAR || f_score::VARCHAR || m_score::VARCHAR AS rfm_score, {case} AS segment
FROM scored ORDER BY length(customer_id), customer_id
) TO '{out}' (HEADER, DELIMITER ',')
""")
