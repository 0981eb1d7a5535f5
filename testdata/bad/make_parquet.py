"""Makes the Parquet files of the bad-input corpus (run with pyarrow installed;
the outputs are committed, so tests do not need Python)."""
import pyarrow as pa
import pyarrow.parquet as pq

good = pa.table({
    "customer_id": ["C1", "C2", "C1"],
    "date": pa.array([19727, 19728, 19760], pa.date32()),
    "amount": [10.0, 20.5, 5.25],
})
pq.write_table(good, "/tmp/good.parquet")
raw = open("/tmp/good.parquet", "rb").read()
# Valid magic at both ends, garbage in between: the footer cannot be decoded.
open("corrupt.parquet", "wb").write(raw[:8] + b"\x00garbage" * 40 + raw[-8:])
# Cut short: no footer at all.
open("truncated.parquet", "wb").write(raw[: len(raw) // 2])
# The date column holds floats.
pq.write_table(pa.table({
    "customer_id": ["C1", "C2"],
    "date": [19727.5, 19728.0],
    "amount": [10.0, 20.5],
}), "wrong_date_type.parquet")
# The amount column holds booleans.
pq.write_table(pa.table({
    "customer_id": ["C1", "C2"],
    "date": pa.array([19727, 19728], pa.date32()),
    "amount": [True, False],
}), "wrong_amount_type.parquet")
# NaN amount, and a 9999-12-31 placeholder date.
pq.write_table(pa.table({
    "customer_id": ["C1", "C2"],
    "date": pa.array([19727, 19728], pa.date32()),
    "amount": [10.0, float("nan")],
}), "nan_amount.parquet")
pq.write_table(pa.table({
    "customer_id": ["C1", "C2"],
    "date": pa.array([19727, 2932896], pa.date32()),
    "amount": [10.0, 1.0],
}), "year_9999.parquet")
# Integer customer ids (the CSV files use text ids for the same customers).
pq.write_table(pa.table({
    "customer_id": pa.array([7, 42], pa.int64()),
    "date": pa.array([19727, 19728], pa.date32()),
    "amount": [10.0, 20.5],
}), "ids_int.parquet")
# testdata/crm.csv as Parquet (the --keep columns as text, Country missing as null).
import pyarrow.csv as pacsv
crm = pacsv.read_csv("../crm.csv", convert_options=pacsv.ConvertOptions(
    column_types={"date": pa.date32(), "customer_id": pa.string()}, strings_can_be_null=True))
pq.write_table(crm, "../crm.parquet")
# Money as DECIMAL, as Spark and warehouses write it.
from decimal import Decimal
pq.write_table(pa.table({
    "customer_id": ["C1", "C2"],
    "date": pa.array([19727, 19728], pa.date32()),
    "amount": pa.array([Decimal("10.50"), Decimal("20.25")], pa.decimal128(12, 2)),
}), "decimal_amount.parquet")
