"""Reading a file of cases from disk (CSV or parquet) into a frame: the delimiter, the options,
the limits on its size, and one sentence for whatever reading it raises.

Resolving the frame's columns and values against the schema is :mod:`crampdx.contract.casefile`'s.
"""

from __future__ import annotations

import csv
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from crampdx.contract.limits import MAX_HEADER_CHARS, MAX_TABLE_COLUMNS, MAX_TABLE_ROWS
from crampdx.contract.schema import Schema, SchemaError
from crampdx.contract.schema_file import load_schema
from crampdx.contract.values import finding_id_for, finding_names
from crampdx.errors import clip

__all__ = ["case_file_errors", "check_parquet_size", "check_table_columns", "csv_delimiter", "csv_options", "read_case_table", "too_many_rows"]


def csv_delimiter(path: Path, names: dict[str, str]) -> str:
    """The delimiter of a CSV file: comma, semicolon or tab (spreadsheets in many locales
    write semicolons), whichever splits the header row into the most findings, then into the
    most columns (labels may hold commas: "Shiny, hairless skin").

    Raises
    ------
    SchemaError
        When the header row is longer than :data:`~crampdx.contract.limits.MAX_HEADER_CHARS`.
    """
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        header = handle.readline(MAX_HEADER_CHARS + 1)
    if len(header) > MAX_HEADER_CHARS:
        raise SchemaError(f"{path}: the header row is longer than {MAX_HEADER_CHARS:,} characters; the first row "
                          f"names the columns (at most {MAX_TABLE_COLUMNS:,}), by finding id or label")

    def fit(sep: str) -> tuple[int, int]:
        try:
            fields = next(csv.reader([header], delimiter=sep), [])
        except csv.Error:  # a field beyond the csv module's limit: not this delimiter's header
            return 0, 0
        return sum(finding_id_for(f.strip(), names) is not None for f in fields), len(fields)

    return max((",", ";", "\t"), key=fit)


def read_case_table(path: str | Path, schema: Schema | None = None) -> pd.DataFrame:
    """Read a CSV or parquet file of cases, keeping every cell as written.

    A CSV is read with only empty cells as missing: ``None`` stays a word (it is a level of
    some findings) and the other "not assessed" words are resolved per finding by
    :func:`resolve_case_table`. Columns that are not findings are read as text, so an id
    such as ``007`` is carried through as ``007``.

    Raises
    ------
    SchemaError
        One sentence: a directory, no such file, unreadable, no cases in it, or more than
        :data:`~crampdx.contract.limits.MAX_TABLE_ROWS` rows or
        :data:`~crampdx.contract.limits.MAX_TABLE_COLUMNS` columns.
    """
    path = Path(path)
    if path.is_dir():
        raise SchemaError(f"{path} is a directory, not a file of cases; give a .csv or .parquet file")
    if not path.is_file():
        raise SchemaError(f"{path}: no such file")
    parquet = path.suffix.lower() == ".parquet"
    with case_file_errors(path, parquet):
        if parquet:
            check_parquet_size(path)
            frame = pd.read_parquet(path)
        else:  # one more row than allowed tells a file that is too long
            frame = pd.read_csv(path, **csv_options(path, schema or load_schema()), nrows=MAX_TABLE_ROWS + 1)
    if len(frame) == 0:
        raise SchemaError(f"{path} holds no cases: it has a header but no rows; add one case per row")
    if len(frame) > MAX_TABLE_ROWS:
        raise too_many_rows(path, MAX_TABLE_ROWS)
    check_table_columns(frame, path)
    return frame


@contextmanager
def case_file_errors(path: Path, parquet: bool) -> Iterator[None]:
    """What reading a case file can raise, as one :class:`SchemaError` sentence naming the file."""
    try:
        yield
    except SchemaError:
        raise
    except ImportError:
        raise SchemaError(f"{path}: reading parquet needs pyarrow: pip install 'crampdx[parquet]'") from None
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path} holds no cases: it is empty; write a header row of finding ids and one case per row") from None
    except OSError as error:
        raise SchemaError(f"{path}: could not be read ({error.strerror or error})") from None
    except Exception as error:  # pandas and pyarrow raise many kinds for a malformed file
        raise SchemaError(f"{path}: could not be read as {'parquet' if parquet else 'CSV'} ({clip(str(error))})") from None


def csv_options(path: Path, schema: Schema) -> dict:
    """``pandas.read_csv`` options for a CSV case file: its delimiter (from the header), empty
    cells as not assessed, columns that are not findings read as text; the header's width checked."""
    names = finding_names(schema)
    sep = csv_delimiter(path, names)
    header = pd.read_csv(path, nrows=0, sep=sep)
    check_table_columns(header, path)
    text = [c for c in header.columns if finding_id_for(c, names) is None]
    return {"sep": sep, "keep_default_na": False, "na_values": [""], "dtype": {c: str for c in text}}


def check_table_columns(frame: pd.DataFrame, where: Any) -> None:
    """Refuse a table with more than :data:`~crampdx.contract.limits.MAX_TABLE_COLUMNS` columns."""
    _check_column_count(frame.shape[1], where)


def _check_column_count(columns: int, where: Any) -> None:
    if columns > MAX_TABLE_COLUMNS:  # each column's name is looked up: bound that work
        raise SchemaError(f"{where} has {columns:,} columns; a file of cases has at most "
                          f"{MAX_TABLE_COLUMNS:,} (one per finding, the etiology and a few carried through)")


def too_many_rows(path: Path, limit: int) -> SchemaError:
    """The error for a file of more than ``limit`` cases (:data:`~crampdx.contract.limits.MAX_TABLE_ROWS`)."""
    return SchemaError(f"{path} holds more than {limit:,} cases; split it into files of at most {limit:,} rows")


def check_parquet_size(path: Path) -> None:
    """Refuse a parquet file with too many rows or columns from its footer, before reading it."""
    import pyarrow.parquet as pq  # optional dependency: only a parquet file needs it

    metadata = pq.ParquetFile(path).metadata
    if metadata.num_rows > MAX_TABLE_ROWS:
        raise too_many_rows(path, MAX_TABLE_ROWS)
    _check_column_count(metadata.num_columns, path)
