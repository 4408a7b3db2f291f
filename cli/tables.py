"""Tables written as they are made: chunks of rows appended to one CSV or parquet file.

``crampdx generate`` and ``crampdx predict`` produce up to millions of rows; holding them all
and writing at the end costs memory and leaves the user looking at a finished progress bar
while the file is written. Here every chunk is written as soon as it is made, by pyarrow
(its CSV writer is several times faster than pandas') in a background thread, so drawing or
ranking the next chunk overlaps the writing of the last one; without pyarrow a CSV is
written by pandas. The file appears atomically when the last chunk is in.
"""

from __future__ import annotations

import io
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import pandas as pd

from crampdx.cli.errors import UserError
from crampdx.files import write_atomically

try:  # optional: parquet output and the fast CSV writer
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - exercised only where pyarrow is not installed
    pa = None

__all__ = ["write_frames_atomically", "write_table_atomically"]


def write_table_atomically(frame: pd.DataFrame, out: Path, option: str = "--out", example: str = "result.csv") -> None:
    """A frame as parquet (for a .parquet name) or CSV, written atomically."""
    write_frames_atomically([frame], out, option, example)


def write_frames_atomically(frames: Iterable[pd.DataFrame], out: Path, option: str = "--out",
                            example: str = "result.csv", written: Callable[[int], None] | None = None) -> int:
    """Write consecutive frames (same columns) as one table, parquet for a .parquet name, else
    CSV, atomically; ``written(rows)`` is called once each frame is on disk. Returns the rows.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> write_frames_atomically([pd.DataFrame({"a": [1.5]}), pd.DataFrame({"a": [2.0]})], target)
    2
    >>> pd.read_csv(target)["a"].tolist()
    [1.5, 2.0]
    """
    parquet = Path(out).suffix.lower() == ".parquet"
    if parquet and pa is None:
        raise UserError("writing parquet needs pyarrow: pip install 'crampdx[parquet]'")
    rows = 0

    def write(tmp: str) -> None:
        nonlocal rows
        with open(tmp, "wb") as handle, ThreadPoolExecutor(1) as writer:
            append = _ParquetAppender(handle) if parquet else _CsvAppender(handle)
            pending: Future | None = None
            try:
                for frame in frames:
                    if pending is not None:
                        pending.result()  # at most one chunk waits: memory stays bounded
                    pending = writer.submit(_append_and_report, append, frame, rows + len(frame), written)
                    rows += len(frame)
                if pending is not None:
                    pending.result()
            except BaseException:
                if pending is not None:
                    wait([pending])  # the writer thread lets go of the file before it is closed
                append.abort()
                raise
            append.close()

    write_atomically(out, write, option, example)
    return rows


def _append_and_report(append, frame: pd.DataFrame, done: int, written: Callable[[int], None] | None) -> None:
    append(frame)
    if written is not None:
        written(done)


class _CsvAppender:
    """CSV as pandas writes it (header by pandas: names quoted only where needed; numbers in
    their shortest round-trip form), the rows by pyarrow unless a value needs quoting."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.header = False

    def __call__(self, frame: pd.DataFrame) -> None:
        if not self.header:
            self.handle.write(frame.iloc[:0].to_csv(index=False).encode("utf-8"))
            self.header = True
        if pa is not None:
            buffer = io.BytesIO()
            try:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                pass  # a value with a delimiter, quote or line break, or a type pyarrow cannot write: pandas below
            else:
                self.handle.write(buffer.getbuffer())
                return
        self.handle.write(frame.to_csv(index=False, header=False).encode("utf-8"))

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _ParquetAppender:
    """One parquet row group per frame, every frame in the first one's schema."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.writer = None

    def __call__(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            # A column empty throughout the first chunk has no type yet: text, so that the
            # values of later chunks (labels, notes) fit it.
            schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema],
                               metadata=table.schema.metadata)
            table = table.cast(schema)
            self.writer = pq.ParquetWriter(self.handle, schema)
        elif not table.schema.equals(self.writer.schema, check_metadata=False):
            try:
                table = table.cast(self.writer.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                different = [f.name for f, g in zip(table.schema, self.writer.schema) if f.type != g.type]
                raise UserError(f"column {', '.join(different)} changes type part-way through the table; write a "
                                ".csv file instead") from None
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:  # no frame at all: an empty file is not parquet
            raise UserError("there are no rows to write")

    def abort(self) -> None:
        """Close the writer of a table that will not be finished (the file is discarded)."""
        if self.writer is not None:
            with suppress(Exception):
                self.writer.close()
            self.writer = None
