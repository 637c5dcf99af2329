"""pandas and pyarrow read the Parquet (and the CSV and Arrow exports) that trove makes from a CSV file, and
get the CSV's values and types back."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

# int, float, bool, ISO 8601 timestamp, string, and columns with empty cells: an int column (pandas reads it as
# float64 with NaN, and so does a nullable int64 Parquet column), a float column, and a string column.
CSV = '''\
id,temperature,ok,when,material,count,pressure,note
1,300.5,true,2024-01-01T12:00:00,steel,7,101325.0,first run
2,0.1,false,2024-01-02T00:30:15,copper,,99000.25,
3,-273.15,true,2024-02-29T23:59:59,"glass, fused",3,,"quoted ""note"""
4,1e-300,false,1999-12-31T00:00:00,PEEK,,1.5e10,
5,12345.678901234567,true,2030-06-15T06:07:08,titanium,4611686018427387904,-0.5,last
'''
TIMESTAMPS = ["when"]


def original(path) -> pd.DataFrame:
    # round_trip: pandas parses floats exactly as Python's float() does, so values compare exactly.
    return pd.read_csv(path, parse_dates=TIMESTAMPS, float_precision="round_trip")


def normalised(df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps in nanoseconds: trove may store microseconds or nanoseconds, pandas reads either."""
    df = df.copy()
    for col in TIMESTAMPS:
        assert pd.api.types.is_datetime64_dtype(df[col]), f"{col} is {df[col].dtype}, not a naive timestamp"
        df[col] = df[col].astype("datetime64[ns]")
    return df


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got, want = normalised(got), normalised(want)
    assert list(got.columns) == list(want.columns)
    assert dict(got.dtypes.astype(str)) == dict(want.dtypes.astype(str)), f"dtypes differ:\n{got.dtypes}\n{want.dtypes}"
    pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.fixture
def table(store):
    csv = store.path("data.csv")
    csv.write_text(CSV)
    out = store.out("put", "lab/t", csv, "--as", "parquet")
    assert "data.parquet" in out, out
    return store, csv


def test_the_csv_as_it_is_is_what_pandas_reads(tmp_path):
    # The test's own premise: pandas reads this CSV with the intended types.
    csv = tmp_path / "data.csv"
    csv.write_text(CSV)
    df = original(csv)
    assert dict(df.dtypes.astype(str)) == {
        "id": "int64",
        "temperature": "float64",
        "ok": "bool",
        "when": "datetime64[ns]",
        "material": "object",
        "count": "float64",
        "pressure": "float64",
        "note": "object",
    }


def test_pandas_reads_trove_parquet_with_the_csv_values_and_types(table):
    store, csv = table
    path = store.locate("lab/t:data.parquet")
    assert path.name == "data.parquet" and path.read_bytes()[:4] == b"PAR1"
    assert_same_table(pd.read_parquet(path), original(csv))


def test_pyarrow_sees_typed_parquet_columns(table):
    store, _ = table
    pf = pq.ParquetFile(store.locate("lab/t:data.parquet"))
    schema = pf.schema_arrow
    assert pf.metadata.num_rows == 5
    types = {f.name: f.type for f in schema}
    assert pa.types.is_int64(types["id"]), schema
    assert pa.types.is_floating(types["temperature"]) and types["temperature"].bit_width == 64, schema
    assert pa.types.is_boolean(types["ok"]), schema
    assert pa.types.is_timestamp(types["when"]) and types["when"].tz is None, schema
    assert types["when"].unit in ("ms", "us", "ns", "s"), schema
    for col in ("material", "note"):
        t = types[col]
        assert pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t), schema
    assert pa.types.is_int64(types["count"]), f"an int column with empty cells should stay int64 (nulls): {schema}"
    table = pf.read()
    assert table.column("count").null_count == 2
    assert table.column("pressure").null_count == 1
    assert table.column("note").null_count == 2
    assert table.column("id").to_pylist() == [1, 2, 3, 4, 5]
    assert table.column("count").to_pylist() == [7, None, 3, None, 4611686018427387904]


def test_get_as_csv_gives_back_the_original_values(table):
    store, csv = table
    out = store.path("out.csv")
    store.out("get", "lab/t:data.parquet", "--as", "csv", "-o", out)
    assert_same_table(original(out), original(csv))


def test_get_as_arrow_is_an_arrow_ipc_file(table):
    store, csv = table
    out = store.path("out.arrow")
    store.out("get", "lab/t:data.parquet", "--as", "arrow", "-o", out)
    with pyarrow.ipc.open_file(out) as reader:
        got = reader.read_all()
    assert got.num_rows == 5
    assert_same_table(got.to_pandas(), original(csv))
