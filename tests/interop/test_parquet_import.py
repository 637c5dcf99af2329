"""A Parquet file written by pyarrow is kept byte for byte, and trove's summary knows its rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROWS = 10_000


def rows_in(doc) -> list[int]:
    """Every integer under a key naming a row count, anywhere in the JSON."""
    found = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("rows", "num_rows", "row_count", "n_rows") and isinstance(value, int):
                found.append(value)
            found += rows_in(value)
    elif isinstance(doc, list):
        for value in doc:
            found += rows_in(value)
    return found


def test_pyarrow_parquet_round_trips_byte_for_byte(store):
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "id": pa.array(np.arange(ROWS, dtype=np.int64)),
            "x": pa.array(rng.standard_normal(ROWS)),
            "label": pa.array([f"sample-{i % 97}" for i in range(ROWS)]),
            "at": pa.array(
                np.datetime64("2024-01-01T00:00:00", "us") + np.arange(ROWS).astype("timedelta64[s]"),
                pa.timestamp("us"),
            ),
            "flag": pa.array(rng.random(ROWS) < 0.3),
        }
    )
    src = store.path("t.parquet")
    pq.write_table(table, src, compression="snappy", row_group_size=1_000)
    assert pq.ParquetFile(src).num_row_groups == 10

    store.out("put", "lab/p", src)
    out = store.path("x.parquet")
    store.out("get", "lab/p:t.parquet", "-o", out)
    assert out.read_bytes() == src.read_bytes()
    stored = store.locate("lab/p:t.parquet")
    assert stored.read_bytes() == src.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(stored), table.to_pandas())

    show = store.show_json("lab/p:t.parquet")
    assert show.get("format") == "parquet", json.dumps(show, indent=2)
    assert ROWS in rows_in(show), f"no row count of {ROWS} in:\n{json.dumps(show, indent=2)}"
