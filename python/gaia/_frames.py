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
        try:
            import pandas  # noqa: F401
        except ImportError as e:
            from ._errors import ConfigError

            raise ConfigError("rows() needs pandas: pip install 'gaia-farm[pandas]'") from e
        return table.to_pandas(split_blocks=True, self_destruct=True)
    raise ValueError(f"backend={backend!r}: use 'pandas', 'polars' or 'arrow'")


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
