"""How churn's time and memory grow with rows: churn rfm, churn cohorts,
churn score (the top 500, and every customer) and churn report (12 weekly
periods) on the generated 1M, 10M and 100M-row CSVs (one run each; make
the data with `examples/generate.rs --rows N`). Updates BENCHMARKS.md.

Usage: scale.py --churn PATH [--sizes 1M,10M,100M] [--update BENCHMARKS.md]
"""
import argparse
import os

from run import run, update_section

p = argparse.ArgumentParser()
p.add_argument("--churn", required=True)
p.add_argument("--sizes", default="1M,10M,100M")
p.add_argument("--update")
args = p.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "data", "out")
os.makedirs(out, exist_ok=True)
jobs = {
    "rfm": ["rfm"],
    "cohorts": ["cohorts", "--period", "month"],
    "score --top 500": ["score", "--top", "500"],
    "score (all customers)": ["score"],
    "report": ["report", "--json"],
}
lines = [
    "| rows | CSV size | job | wall (s) | peak memory (MiB) | µs per row |",
    "|---:|---:|---|---:|---:|---:|",
]
for size in args.sizes.split(","):
    data = os.path.join(here, "data", f"tx_{size}.csv")
    if not os.path.exists(data):
        print(f"skipping {size}: {data} is missing")
        continue
    rows = sum(1 for _ in open(data, "rb")) - 1
    for name, job in jobs.items():
        target = os.path.join(out, "scale.json" if name == "report" else "scale.csv")
        wall, mem = run([args.churn] + job + [data, "--quiet", "-o", target])
        lines.append(
            f"| {rows:,} | {os.path.getsize(data) / 1e6:,.0f} MB | `churn {name}` | {wall:.2f} | {mem:,.0f} | {wall / rows * 1e6:.2f} |"
        )
        print(lines[-1], flush=True)
table = "\n".join(lines)
print(table)
if args.update:
    update_section(args.update, "scaling", table)
