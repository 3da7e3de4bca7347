"""Arrow streams into pandas without the server: the batch-by-batch fill must give exactly
what `pyarrow.Table.to_pandas` gives, whatever the announced row count says."""
from __future__ import annotations

import io

import numpy as np
import pandas
import pyarrow as pa
import pytest

from gaia._frames import pandas_from_batches


def stream(table: pa.Table, chunk: int = 1000) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        for b in table.to_batches(max_chunksize=chunk):
            w.write_batch(b)
    return sink.getvalue()


def table(n: int) -> pa.Table:
    # generation has its first missing value in a later batch; method is dictionary-encoded.
    return pa.table(
        {
            "seq": pa.array(np.arange(n, dtype=np.uint64)),
            "generation": pa.array([None if i == n - 3 else i for i in range(n)], pa.uint64()),
            "attempt": pa.array(np.ones(n, dtype=np.uint32)),
            "best": pa.array(np.linspace(-1, 1, n)),
            "entropy": pa.array([None if i % 5 == 0 else float(i) for i in range(n)], pa.float64()),
            "method": pa.DictionaryArray.from_arrays(
                pa.array([None if i % 11 == 0 else i % 3 for i in range(n)], pa.uint32()),
                pa.array(["cma_es", "openai_es", "random_search"]),
            ),
        }
    )


@pytest.mark.parametrize("announced", [5000, 4000, 5001, 0])
def test_the_batch_by_batch_frame_is_to_pandas_frame(announced: int) -> None:
    data = stream(table(5000))
    df = pandas_from_batches(pa.ipc.open_stream(data), announced)
    pandas.testing.assert_frame_equal(df, pa.ipc.open_stream(data).read_all().to_pandas())


def test_an_empty_stream_is_an_empty_frame_with_its_columns() -> None:
    data = stream(table(0))
    df = pandas_from_batches(pa.ipc.open_stream(data), 0)
    assert list(df.columns) == ["seq", "generation", "attempt", "best", "entropy", "method"]
    assert len(df) == 0


def test_other_column_types_and_repeated_names_are_left_to_arrow() -> None:
    t = pa.table({"seq": pa.array([1, 2], pa.uint64()), "note": pa.array(["a", "b"])})
    reader = pa.ipc.open_stream(stream(t))
    assert pandas_from_batches(reader, 2) is None
    assert reader.read_all().num_rows == 2, "nothing was read"
    twice = pa.Table.from_arrays(
        [pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], names=["loss", "loss"]
    )
    reader = pa.ipc.open_stream(stream(twice))
    assert pandas_from_batches(reader, 2) is None
    assert reader.read_all().num_columns == 2
