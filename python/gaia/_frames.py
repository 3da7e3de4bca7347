"""Rows into DataFrames: pandas (the default), polars, or the ``pyarrow.Table`` itself."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Literal

Backend = Literal["pandas", "polars", "arrow"]
"""What ``rows()`` returns: a pandas DataFrame, a polars DataFrame or a ``pyarrow.Table``."""


def from_arrow(table: Any, backend: Backend) -> Any:
    """A table in the chosen backend. pandas gets one block per column (no consolidation
    copy) and the table's buffers are released column by column as they are converted, so
    the peak stays near one copy of the data; polars takes the Arrow buffers as they are."""
    if backend == "arrow":
        return table
    if backend == "polars":
        try:
            import polars
        except ImportError as e:
            from ._errors import ConfigError

            raise ConfigError("backend='polars' needs polars: pip install 'gaia-farm[polars]'") from e
        return polars.from_arrow(table)
    if backend == "pandas":
        need_pandas()
        return table.to_pandas(split_blocks=True, self_destruct=True)
    raise ValueError(f"backend={backend!r}: use 'pandas', 'polars' or 'arrow'")


def need_pandas() -> None:
    """Raises a ConfigError saying how to install pandas when it is missing."""
    try:
        import pandas  # noqa: F401
    except ImportError as e:
        from ._errors import ConfigError

        raise ConfigError("rows() needs pandas: pip install 'gaia-farm[pandas]'") from e


def pandas_from_batches(reader: Any, rows: int) -> Any:
    """A pandas DataFrame from an Arrow stream of ``rows`` rows, filled batch by batch into
    columns allocated once: each batch is dropped once copied, so the peak is the frame plus
    one batch (``Table.to_pandas`` holds the whole table beside the frame). The dtypes are
    ``to_pandas``'s: numbers as they are, an integer column with a missing value as float64
    with NaN, dictionary columns as categoricals (the stream's one dictionary). None, with
    nothing read, when a column has another type or two columns share a name (the caller reads
    the table instead)."""
    need_pandas()
    import numpy as np
    import pandas
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = reader.schema
    if len(set(schema.names)) != len(schema.names):
        return None  # a frame built from a dict would keep one of two same-named columns
    kinds: List[str] = []
    for f in schema:
        t = f.type
        if pa.types.is_dictionary(t) and pa.types.is_integer(t.index_type):
            kinds.append("dict")
        elif pa.types.is_floating(t):
            kinds.append("float")
        elif pa.types.is_integer(t):
            kinds.append("int")
        else:
            return None
    cols: List[Any] = [
        np.empty(rows, dtype=np.int32 if kind == "dict" else f.type.to_pandas_dtype())
        for f, kind in zip(schema, kinds)
    ]
    categories: List[Any] = [None] * len(kinds)
    at = 0
    for batch in reader:
        n = batch.num_rows
        if cols and at + n > len(cols[0]):
            # More rows than announced (never expected): grow, a copy.
            cols = [np.resize(c, max(at + n, 2 * len(c))) for c in cols]
        for i, (kind, col) in enumerate(zip(kinds, batch.columns)):
            if kind == "dict":
                if categories[i] is None:
                    categories[i] = col.dictionary.to_pandas()
                codes = pc.fill_null(col.indices.cast(pa.int32()), -1)
                cols[i][at : at + n] = codes.to_numpy(zero_copy_only=False)
                continue
            if kind == "int" and col.null_count and cols[i].dtype.kind in "iu":
                cols[i] = cols[i].astype(np.float64)
            cols[i][at : at + n] = col.to_numpy(zero_copy_only=False)
        at += n
        del batch
    data: Dict[str, Any] = {}
    for f, kind, c, cats in zip(schema, kinds, cols, categories):
        c = c[:at]
        if kind == "dict":
            data[f.name] = pandas.Categorical.from_codes(
                c, categories=pandas.Index(cats if cats is not None else [])
            )
        else:
            data[f.name] = c
    # copy=False: one block per column, as split_blocks=True gives, without a consolidating copy.
    return pandas.DataFrame(data, copy=False)


def flatten(rows: Iterable[Dict[str, Any]], attempt: int) -> List[Dict[str, Any]]:
    """JSON rows (``models.Row``) as flat records: ``attempt``, the row's fields, and each
    named metric as a field of its own (a metric named like a field gets ``metric_``)."""
    out = []
    for r in rows:
        flat: Dict[str, Any] = {"attempt": attempt}
        for k, v in r.items():
            if k != "metrics":
                flat[k] = v
        for name, value in r.get("metrics", []):
            flat[f"metric_{name}" if name in flat else name] = value
        out.append(flat)
    return out


def from_records(records: List[Dict[str, Any]], backend: Backend) -> Any:
    """Flat records (the JSON path) in the chosen backend."""
    if backend == "pandas":
        import pandas

        return pandas.DataFrame.from_records(records)
    if backend == "polars":
        import polars

        return polars.from_dicts(records)
    import pyarrow

    return pyarrow.Table.from_pylist(records)
