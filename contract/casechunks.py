"""Large tables of cases read and validated a chunk of rows at a time, in bounded memory.

:func:`crampdx.contract.read_case_table` reads a whole file; a batch of millions of cases
(``crampdx predict``) is instead read here in chunks, each resolved by
:func:`crampdx.contract.resolve_case_table` as a table of its own. The chunks are read with
the same options as the whole file would be, and an error names its rows as they are
numbered in the whole file (data rows, 1-based), not in the chunk.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pandas as pd

from crampdx.contract.casefile import CaseTable, resolve_case_table
from crampdx.contract.casereading import (case_file_errors, check_parquet_size, check_table_columns, csv_options, read_case_table,
                                         too_many_rows)
from crampdx.contract.limits import MAX_TABLE_ROWS
from crampdx.contract.schema import Schema, SchemaError
from crampdx.contract.schema_file import load_schema

__all__ = ["CHUNK_ROWS", "read_case_chunks", "renumber_rows", "resolve_case_chunk"]

CHUNK_ROWS = 50_000
# A value the user wrote is shown as its repr (crampdx.errors.quote): row numbers inside it are not ours.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_ROWS = re.compile(r"\b(rows?) (\d+(?:, \d+)*)")


def read_case_chunks(path: str | Path, schema: Schema | None = None, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Yield a CSV or parquet file of cases as frames of at most ``rows`` rows, read as
    :func:`~crampdx.contract.read_case_table` reads the whole file. Each frame's index
    continues the previous one's (0-based positions in the file).

    Raises
    ------
    SchemaError
        As :func:`~crampdx.contract.read_case_table` (a directory, no such file, unreadable,
        no cases, too many rows or columns), from the chunk where it is found.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cases.csv"
    >>> _ = path.write_text("potassium,sex\\n3.1,female\\n4.0,male\\n4.4,male\\n")
    >>> [chunk.index.tolist() for chunk in read_case_chunks(path, rows=2)]
    [[0, 1], [2]]
    """
    path = Path(path)
    parquet = path.suffix.lower() == ".parquet"
    if path.is_dir() or not path.is_file():
        read_case_table(path)  # raises the one sentence for a directory or a missing file
    chunks = _parquet_chunks(path, rows) if parquet else _csv_chunks(path, schema or load_schema(), rows)
    seen = 0
    while True:
        with case_file_errors(path, parquet):
            frame = next(chunks, None)
        if frame is None:
            break
        if len(frame) == 0:  # a header and no rows
            continue
        if seen + len(frame) > MAX_TABLE_ROWS:
            raise too_many_rows(path, MAX_TABLE_ROWS)
        check_table_columns(frame, path)
        frame.index = pd.RangeIndex(seen, seen + len(frame))
        seen += len(frame)
        yield frame
    if seen == 0:
        raise SchemaError(f"{path} holds no cases: it has a header but no rows; add one case per row")


def _csv_chunks(path: Path, schema: Schema, rows: int) -> Iterator[pd.DataFrame]:
    with pd.read_csv(path, **csv_options(path, schema), chunksize=rows) as reader:
        yield from reader


def _parquet_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq  # optional dependency: only a parquet file needs it

    check_parquet_size(path)  # from the footer, before the first batch is decoded
    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
        yield batch.to_pandas()


def resolve_case_chunk(frame: pd.DataFrame, schema: Schema, first_row: int, *, keep_other: bool) -> CaseTable:
    """:func:`~crampdx.contract.resolve_case_table` for a chunk whose first row is row
    ``first_row`` (1-based) of the whole file: an error names the file's row numbers.

    Examples
    --------
    >>> frame = pd.DataFrame({"potassium": [4.0, "lots"]})
    >>> resolve_case_chunk(frame, load_schema(), 1001, keep_other=False)
    Traceback (most recent call last):
    ...
    crampdx.contract.schema.SchemaError: potassium, row 1002: ...
    """
    try:
        return resolve_case_table(frame, schema, keep_other=keep_other)
    except SchemaError as error:
        raise SchemaError(renumber_rows(str(error), first_row - 1)) from None


def renumber_rows(message: str, offset: int) -> str:
    """Shift the row numbers a message names ('row 3', 'rows 3, 8, 12') by ``offset``,
    leaving quoted user values alone.

    Examples
    --------
    >>> renumber_rows("sex, rows 1, 4 and 2 more: unknown level 'row 2'", 100)
    "sex, rows 101, 104 and 2 more: unknown level 'row 2'"
    """
    def shift(match: re.Match) -> str:
        numbers = ", ".join(str(int(n) + offset) for n in match.group(2).split(", "))
        return f"{match.group(1)} {numbers}"

    parts, last = [], 0
    for quoted in _QUOTED.finditer(message):
        parts += [_ROWS.sub(shift, message[last:quoted.start()]), quoted.group(0)]
        last = quoted.end()
    return "".join(parts + [_ROWS.sub(shift, message[last:])])
