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

from crampdx.contract.limits import MAX_HEADER_CHARS, MAX_TABLE_COLUMNS, MAX_TABLE_DECODED_BYTES, MAX_TABLE_ROWS
from crampdx.contract.schema import Schema, SchemaError
from crampdx.contract.schema_file import load_schema
from crampdx.contract.values import finding_id_for, finding_names
from crampdx.errors import clip

__all__ = ["case_file_errors", "check_parquet_size", "check_table_columns", "csv_delimiter", "csv_options", "parquet_decoded_bytes",
           "read_case_table", "too_many_rows"]

# Bytes a value of each fixed-width parquet type decodes to (INT96, a timestamp, to 8).
_VALUE_BYTES = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 8}


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
    """Refuse a parquet file with too many rows or columns, or one that decodes to more than
    :data:`~crampdx.contract.limits.MAX_TABLE_DECODED_BYTES`, from its footer, before reading it.

    The columns counted are those pandas reads as columns: an index pandas stored with the
    table (``to_parquet`` of a frame without the default index) becomes the frame's index again.
    """
    import pyarrow.parquet as pq  # optional dependency: only a parquet file needs it

    with pq.ParquetFile(path) as file:
        metadata, pandas_metadata = file.metadata, file.schema_arrow.pandas_metadata or {}
    if metadata.num_rows > MAX_TABLE_ROWS:
        raise too_many_rows(path, MAX_TABLE_ROWS)
    # pandas' index columns by name (a RangeIndex is stored as a dict, not as a column)
    index = {name for name in pandas_metadata.get("index_columns", ()) if isinstance(name, str)}
    _check_column_count(metadata.num_columns - len(index & set(metadata.schema.names)), path)
    decoded = parquet_decoded_bytes(metadata)
    if decoded > MAX_TABLE_DECODED_BYTES:
        rows = max(1, metadata.num_rows * MAX_TABLE_DECODED_BYTES // decoded)
        raise SchemaError(f"{path} decodes to {decoded:,} bytes, more than the {MAX_TABLE_DECODED_BYTES:,} a file of cases may; "
                          f"split it into files of at most {rows:,} rows")


def parquet_decoded_bytes(metadata) -> int:
    """What a parquet file's columns decode to at least, from its footer (``pyarrow``'s
    ``FileMetaData``): a number or boolean column its rows times the value's width, however well
    it was encoded and compressed (a million rows of zeros take a few kB); any other column its
    size uncompressed (plain text: the characters and 4 bytes each; text dictionary-encoded
    decodes to more, which the footer does not tell).
    """
    columns = [metadata.schema.column(i) for i in range(metadata.num_columns)]
    widths = [c.length if c.physical_type == "FIXED_LEN_BYTE_ARRAY" else _VALUE_BYTES.get(c.physical_type, 0) for c in columns]
    total = 0
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        total += sum(max(group.column(i).total_uncompressed_size, group.num_rows * width) for i, width in enumerate(widths))
    return total
