"""The table of `churn cohorts --period month` (classic retention, long
layout), computed by DuckDB. Usage: cohorts_duckdb.py INPUT.csv OUTPUT.csv
"""
import sys

from peers import duckdb_connection, duckdb_tx

src, out = sys.argv[1], sys.argv[2]
con = duckdb_connection()
con.execute(f"""
COPY (
WITH tx AS ({duckdb_tx(src)}
),
latest AS (SELECT max(d) AS a, year(max(d)) * 12 + month(max(d)) - 1 AS ai FROM tx),
firsts AS (
  SELECT cid, year(min(d)) * 12 + month(min(d)) - 1 AS ci
  FROM tx WHERE amount > 0 GROUP BY cid
),
sizes AS (SELECT ci, count(*) AS cohort_size FROM firsts GROUP BY ci),
joined AS (
  SELECT f.ci, year(t.d) * 12 + month(t.d) - 1 - f.ci AS k, t.cid, t.amount, t.order_id
  FROM tx t JOIN firsts f USING (cid)
),
cells AS (
  SELECT ci, k,
         count(DISTINCT cid) FILTER (WHERE amount > 0) AS customers,
         count(DISTINCT order_id) FILTER (WHERE amount > 0) AS orders,
         sum(amount) AS revenue
  FROM joined WHERE k >= 0
  GROUP BY ci, k
),
grid AS (
  SELECT s.ci, s.cohort_size, unnest(range(0, (SELECT ai FROM latest) - s.ci + 1)) AS k FROM sizes s
)
SELECT make_date(CAST(g.ci // 12 AS INT), CAST(g.ci % 12 + 1 AS INT), 1) AS cohort, g.k AS period, g.cohort_size,
       coalesce(c.customers, 0) AS customers, coalesce(c.customers, 0) / g.cohort_size AS retention,
       coalesce(c.orders, 0) AS orders, coalesce(c.revenue, 0) AS revenue,
       (g.ci + g.k = (SELECT ai FROM latest)) AND (SELECT a FROM latest) <> last_day((SELECT a FROM latest)) AS partial
FROM grid g LEFT JOIN cells c ON c.ci = g.ci AND c.k = g.k
ORDER BY g.ci, g.k
) TO '{out}' (HEADER, DELIMITER ',')
""")
