"""The table of `churn cohorts --period month` (classic retention, long
layout), computed by pandas. Usage: cohorts_pandas.py INPUT OUTPUT.csv
"""
import sys

import pandas as pd
from peers import pandas_tx

src, out = sys.argv[1], sys.argv[2]
tx = pandas_tx(src)
tx["mi"] = tx["d"].dt.year * 12 + tx["d"].dt.month - 1
latest = tx["d"].max()
ai = latest.year * 12 + latest.month - 1
month_end = latest.is_month_end
firsts = tx[tx["amount"] > 0].groupby("cid")["mi"].min().rename("ci")
sizes = firsts.value_counts().rename("cohort_size").sort_index()
t = tx.join(firsts, on="cid", how="inner")
t["k"] = t["mi"] - t["ci"]
t = t[t["k"] >= 0]
buy = t[t["amount"] > 0].groupby(["ci", "k"])
cells = pd.DataFrame(
    {
        "customers": buy["cid"].nunique(),
        "orders": buy["order_id"].nunique(),
        "revenue": t.groupby(["ci", "k"])["amount"].sum(),
    }
)
grid = pd.MultiIndex.from_tuples(
    [(ci, k) for ci in sizes.index for k in range(0, ai - ci + 1)], names=["ci", "k"]
)
res = cells.reindex(grid).fillna({"customers": 0, "orders": 0, "revenue": 0.0}).reset_index()
res = res.join(sizes, on="ci")
res["customers"] = res["customers"].astype("int64")
res["orders"] = res["orders"].astype("int64")
res["retention"] = res["customers"] / res["cohort_size"]
res["cohort"] = pd.to_datetime(
    pd.DataFrame({"year": res["ci"] // 12, "month": res["ci"] % 12 + 1, "day": 1})
).dt.strftime("%Y-%m-%d")
res["partial"] = ((res["ci"] + res["k"] == ai) & (not month_end)).map({True: "true", False: "false"})
res = res.rename(columns={"k": "period"})
res[["cohort", "period", "cohort_size", "customers", "retention", "orders", "revenue", "partial"]].to_csv(
    out, index=False
)
