#!/usr/bin/env bash
# Times `churn rfm` and `churn cohorts` against DuckDB, polars (Python) and
# pandas computing the same tables on a generated export, after checking that
# they agree, and `churn score` end to end against lifetimes
# (benches/models.py); each on the CSV and on the same data as Parquet.
#
#   benches/compare.sh                 # 10M rows, 5 runs each
#   benches/compare.sh --size 100M     # the big run
#   benches/compare.sh --runs 7
#
# Generates the data with examples/generate.rs if missing, creates a Python
# virtualenv with the peers in benches/.venv, prints a table and updates
# BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
size=10M
runs=5
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        *) echo "usage: benches/compare.sh [--size 10M|100M] [--runs N]" >&2; exit 2 ;;
    esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/churn-target}"
cargo build --release --bin churn --example generate
mkdir -p benches/data
data="benches/data/tx_$size.csv"
if [ ! -f "$data" ]; then
    "$CARGO_TARGET_DIR/release/examples/generate" --rows "$size" -o "$data"
fi
parquet="benches/data/tx_$size.parquet"
if [ ! -f "$parquet" ]; then
    "$CARGO_TARGET_DIR/release/examples/generate" --rows "$size" -o "$parquet"
fi
if [ ! -x benches/.venv/bin/python ]; then
    python3 -m venv benches/.venv
fi
benches/.venv/bin/pip install --quiet --disable-pip-version-check duckdb polars pandas pyarrow lifetimes
for input in "$data" "$parquet"; do
    suffix=""
    case "$input" in *.parquet) suffix="-parquet" ;; esac
    for task in rfm cohorts; do
        benches/.venv/bin/python benches/run.py --task "$task" --data "$input" \
            --churn "$CARGO_TARGET_DIR/release/churn" --python benches/.venv/bin/python \
            --runs "$runs" --name "$task-$size$suffix" --update BENCHMARKS.md
    done
    benches/.venv/bin/python benches/models.py --data "$input" --churn "$CARGO_TARGET_DIR/release/churn" \
        --python benches/.venv/bin/python --name "models-$size$suffix" --update BENCHMARKS.md
done
