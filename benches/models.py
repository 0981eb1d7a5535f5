"""End-to-end model benchmark: `churn score` (summary, BG/NBD fit,
Gamma-Gamma fit, P(alive), expected purchases, spend, CLV for every
customer) against Python's lifetimes doing the same (benches/models_lifetimes.py),
once for lifetimes (it takes minutes), median of --runs for churn. Checks
that both fitted the same parameters, prints a table and updates BENCHMARKS.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from run import run, update_section  # wall time and peak RSS via GNU time

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--churn", required=True)
p.add_argument("--python", default=sys.executable)
p.add_argument("--runs", type=int, default=5)
p.add_argument("--name", default="models")
p.add_argument("--update")
args = p.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "data", "out")
os.makedirs(out, exist_ok=True)


def churn_json(*extra):
    text = subprocess.run([args.churn, "fit", args.data, "--json", "-q", *extra], check=True,
                          capture_output=True, text=True).stdout
    return json.loads(text)


bg, gg = churn_json(), churn_json("--model", "gg")
full = [args.churn, "score", args.data, "-q", "-o", os.path.join(out, "score.csv")]
top = [args.churn, "score", args.data, "-q", "--top", "500", "-o", os.path.join(out, "score-top.csv")]
times = {"full": [], "top": []}
for _ in range(args.runs):
    times["full"].append(run(full))
    times["top"].append(run(top))
lt_out = os.path.join(out, "lifetimes.json")
lt_wall, lt_mem = run([args.python, os.path.join(here, "models_lifetimes.py"), args.data, lt_out])
lt = json.load(open(lt_out))
pairs = [(bg["params"][k], lt["bgnbd"][k]) for k in ["r", "alpha", "a", "b"]]
pairs += [(gg["params"]["p"], lt["gg"]["p"]), (gg["params"]["q"], lt["gg"]["q"]), (gg["params"]["gamma"], lt["gg"]["v"])]
worst = max(abs(a - b) / abs(b) for a, b in pairs)
if worst > 1e-3 or lt["customers"] != bg["customers"]:
    sys.exit(f"churn and lifetimes disagree: {pairs}, customers {bg['customers']} vs {lt['customers']}")
med = lambda xs, i: statistics.median(x[i] for x in xs)
span = lambda xs: f"{min(x[0] for x in xs):.2f}–{max(x[0] for x in xs):.2f}"
lines = [
    f"Input: `{os.path.relpath(os.path.abspath(args.data), os.path.dirname(here))}`, {bg['customers']:,} customers. churn: median of {args.runs} runs; lifetimes: one run.",
    "",
    "| tool | wall (s) | min–max (s) | peak memory (MiB) | speed-up |",
    "|---|---:|---:|---:|---:|",
    f"| churn score, all customers to CSV | {med(times['full'], 0):.2f} | {span(times['full'])} | {med(times['full'], 1):.0f} | {lt_wall / med(times['full'], 0):.0f}x |",
    f"| churn score --top 500 | {med(times['top'], 0):.2f} | {span(times['top'])} | {med(times['top'], 1):.0f} | {lt_wall / med(times['top'], 0):.0f}x |",
    f"| lifetimes (summary {lt['seconds']['summary']:.0f} s, BG/NBD fit {lt['seconds']['bgnbd_fit']:.0f} s, "
    f"Gamma-Gamma fit {lt['seconds']['gg_fit']:.0f} s, scoring {lt['seconds']['scoring']:.0f} s) | {lt_wall:.1f} | one run | {lt_mem:.0f} | 1x |",
    "",
    f"- Same customers; fitted parameters agree within {worst:.1e} relative "
    f"(BG/NBD r={bg['params']['r']:.4f} alpha={bg['params']['alpha']:.4f} a={bg['params']['a']:.4f} b={bg['params']['b']:.4f}; "
    f"Gamma-Gamma p={gg['params']['p']:.4f} q={gg['params']['q']:.4f} gamma={gg['params']['gamma']:.4f}).",
]
table = "\n".join(lines)
print(table)
if args.update:
    update_section(args.update, args.name, table)
