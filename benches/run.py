"""Times churn and its peers on the same work; checks they agree first.

Each tool runs once to produce its output, outputs are compared with churn's,
then the tools run in rotating order `--runs` times. Wall time comes from a
monotonic clock, peak memory from the child's rusage (ru_maxrss) via wait4.
Prints a Markdown table and, with --update FILE, replaces the section between
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in FILE.
"""
import argparse
import csv
import itertools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd):
    """Wall time (monotonic clock) and peak RSS in MiB. The peak comes from
    GNU time, which forks from its own small process: a child forked from
    this script would inherit this script's high-water mark."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        start = time.monotonic()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", t.name] + cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wall = time.monotonic() - start
        if proc.returncode != 0:
            sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
        peak_kb = int(t.read().strip().splitlines()[-1])
    return wall, peak_kb / 1024.0


def agree_cohorts(reference, other, name):
    """Same cells; retention and revenue within 1e-9 relative."""
    with open(reference, newline="") as fa, open(other, newline="") as fb:
        a, b = csv.reader(fa), csv.reader(fb)
        ha, hb = next(a), next(b)
        if ha != hb:
            sys.exit(f"{name}: header {hb} differs from churn's {ha}")
        n = 0
        for x, y in itertools.zip_longest(a, b):
            n += 1
            if x is None or y is None:
                sys.exit(f"{name}: the row counts differ from churn's")
            same = [x[i] == y[i] for i in (0, 1, 2, 3, 5, 7)]
            close = all(
                abs(float(x[i]) - float(y[i])) <= 1e-9 * max(1.0, abs(float(x[i]))) for i in (4, 6)
            )
            if not all(same) or not close:
                sys.exit(f"{name} disagrees with churn:\n  churn: {x}\n  {name}: {y}")
    return n, 0


def agree(reference, other, name):
    """Same customers and figures; scores may differ only where the monetary
    sums differ in the last bits (a different summation order) and sit on a
    quantile cut point."""
    fa, fb = open(reference, newline=""), open(other, newline="")
    a, b = csv.reader(fa), csv.reader(fb)
    ha, hb = next(a), next(b)
    if ha != hb:
        sys.exit(f"{name}: header {hb} differs from churn's {ha}")
    float_ties = 0
    n = 0
    for x, y in itertools.zip_longest(a, b):
        n += 1
        if x is None or y is None:
            sys.exit(f"{name}: the row counts differ from churn's")
        if x == y:
            continue
        mx, my = float(x[5]), float(y[5])
        close = abs(mx - my) <= 1e-9 * max(1.0, abs(mx))
        if x[:5] != y[:5] or not close:
            sys.exit(f"{name} disagrees with churn:\n  churn: {x}\n  {name}: {y}")
        if x[6:] != y[6:]:
            float_ties += 1
    if float_ties > max(10, n // 10000):
        sys.exit(f"{name}: {float_ties} rows with different scores")
    return n, float_ties


def update_section(path, name, table):
    """Replaces the text between <!-- bench:NAME --> and <!-- /bench:NAME --> in path."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = open(path).read() if os.path.exists(path) else ""
    block = f"{begin}\n{table}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    open(path, "w").write(text)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--churn", required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--task", choices=["rfm", "cohorts"], default="rfm")
    p.add_argument("--name", default="rfm")
    p.add_argument("--update")
    args = p.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "data", "out")
    os.makedirs(out, exist_ok=True)
    task = args.task
    churn_args = ["rfm"] if task == "rfm" else ["cohorts", "--period", "month"]
    tools = {
        "churn": lambda o: [args.churn] + churn_args + [args.data, "--quiet", "-o", o],
        "duckdb": lambda o: [args.python, os.path.join(here, f"{task}_duckdb.py"), args.data, o],
        "polars (Python)": lambda o: [args.python, os.path.join(here, f"{task}_polars.py"), args.data, o],
        "pandas": lambda o: [args.python, os.path.join(here, f"{task}_pandas.py"), args.data, o],
    }
    outputs = {t: os.path.join(out, f"{task}-{t.split()[0]}.csv") for t in tools}
    check = agree if task == "rfm" else agree_cohorts
    for t, cmd in tools.items():
        run(cmd(outputs[t]))
    notes = []
    for t in tools:
        if t != "churn":
            n, ties = check(outputs["churn"], outputs[t], t)
            if task == "rfm":
                notes.append(f"{t}: same {n:,} rows as churn ({ties} rows on a quantile cut point differ by a score, from float summation order)")
            else:
                notes.append(f"{t}: same {n:,} cells as churn (retention and revenue within 1e-9 relative)")
    times = {t: [] for t in tools}
    mems = {t: [] for t in tools}
    names = list(tools)
    for r in range(args.runs):
        order = names[r % len(names):] + names[: r % len(names)]
        for t in order:
            w, m = run(tools[t](outputs[t]))
            times[t].append(w)
            mems[t].append(m)
            print(f"run {r + 1}: {t}: {w:.2f} s, {m:.0f} MiB", file=sys.stderr)
    size = os.path.getsize(args.data)
    work = "`churn rfm`" if task == "rfm" else "`churn cohorts --period month`"
    lines = [
        f"Work: {work} and the same table from each peer. "
        f"Input: `{os.path.relpath(args.data)}` ({size / 1e6:.0f} MB). "
        f"Machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}. "
        f"Median of {args.runs} runs, rotating order; peak memory is the child's max RSS.",
        "",
        "| tool | median wall (s) | min–max (s) | median peak memory (MiB) |",
        "|---|---:|---:|---:|",
    ]
    for t in names:
        lines.append(
            f"| {t} | {statistics.median(times[t]):.2f} | {min(times[t]):.2f}–{max(times[t]):.2f} "
            f"| {statistics.median(mems[t]):.0f} |"
        )
    lines += [""] + [f"- {n}" for n in notes]
    table = "\n".join(lines)
    print(table)
    if args.update:
        update_section(args.update, args.name, table)

if __name__ == "__main__":
    main()
