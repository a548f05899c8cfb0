"""Small helpers shared by the generators: RNG streams, id ranges, typed polars columns, CSV."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl

# (table, rows): what every generator yields, in an order that satisfies foreign keys
Batch = tuple[str, pl.DataFrame]
Batches = Iterator[Batch]

TIMESTAMP = pl.Datetime("us", "UTC")


def stream(random_seed: int, *keys: int) -> np.random.Generator:
    """An independent, reproducible RNG per (workspace, generator, chunk): adding rows to one
    table never shifts the values drawn for another."""
    return np.random.default_rng([random_seed, *keys])


class Ids:
    """Explicit ids, 1..N per table across workspaces, handed out in generation order."""

    def __init__(self, start: dict[str, int] | None = None) -> None:
        self.next: dict[str, int] = dict(start or {})

    def take(self, table: str, n: int) -> np.ndarray:
        first = self.next.get(table, 1)
        self.next[table] = first + n
        return np.arange(first, first + n, dtype=np.int64)


def pick(rng: np.random.Generator, n: int, probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """n category indexes drawn with the given (not necessarily normalised) weights."""
    p = np.asarray(probs, dtype=np.float64)
    cdf = np.cumsum(p / p.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), p.size - 1)


def ts(us: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    """int64 microseconds as a timestamptz column, in whole seconds (what COPY receives);
    rows where `valid` is False are NULL."""
    series = pl.Series(us - us % 1_000_000, dtype=pl.Int64).cast(TIMESTAMP)
    return series if valid is None else _null_unless(series, valid)


def labels(
    choices: Sequence[str | None] | np.ndarray, index: np.ndarray, valid: np.ndarray | None = None
) -> pl.Series:
    """Strings picked by index from a small vocabulary (gathered natively: converting numpy
    string arrays to polars is the slowest step of a large seed otherwise)."""
    series = pl.Series([None if c is None else str(c) for c in choices], dtype=pl.String)
    picked = series.gather(np.asarray(index, dtype=np.int64))
    return picked if valid is None else _null_unless(picked, valid)


def nullable(values: Any, valid: np.ndarray, dtype: Any = None) -> pl.Series:
    return _null_unless(pl.Series(values, dtype=dtype), valid)


def _null_unless(series: pl.Series, valid: np.ndarray) -> pl.Series:
    frame = pl.DataFrame({"v": series, "ok": valid})
    return frame.select(pl.when(pl.col("ok")).then(pl.col("v"))).to_series().alias("")


def json_int_lists(values: np.ndarray, lengths: np.ndarray) -> pl.Series:
    """Row i of a 2-D int matrix, cut to lengths[i], as JSON text: '[12, 3600]'."""
    frame = pl.DataFrame({"m": values, "k": lengths})
    return frame.select(
        pl.concat_str(
            pl.lit("["),
            pl.col("m")
            .arr.to_list()
            .list.head(pl.col("k"))
            .cast(pl.List(pl.String))
            .list.join(", "),
            pl.lit("]"),
        )
    ).to_series()


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """CSV as COPY reads it: no header, empty unquoted field = NULL, UTC timestamps."""
    return frame.write_csv(
        include_header=False, datetime_format="%Y-%m-%d %H:%M:%S+00", null_value=""
    ).encode()
