"""How much input crampdx reads: every bound on a case, a case file and a table of cases.

A case is small (129 findings, each one short value), so anything far larger is a mistake
or an attack, refused with one sentence before it costs time or memory. A table of cases
for batch prediction is bounded by its rows, its columns and each cell, not by its size in
bytes: a file of millions of cases is a legitimate batch (4.7 million rows have been
ranked), and its cost grows linearly with its size, so it needs no byte limit; what must be
bounded is a single cell (a value, a header) and the work per column. The one exception is
what a parquet file decodes to, which its footer tells before it is read: a few hundred kB
of compressed parquet can decode to gigabytes.
"""

from __future__ import annotations

import operator
import sys

__all__ = ["MAX_CASE_FIELDS", "MAX_CASE_JSON_BYTES", "MAX_HEADER_CHARS", "MAX_JSON_DEPTH", "MAX_NAME_CHARS",
           "MAX_NUMBER", "MAX_TABLE_COLUMNS", "MAX_TABLE_DECODED_BYTES", "MAX_TABLE_ROWS", "MAX_VALUE_CHARS",
           "whole_number"]

MAX_CASE_JSON_BYTES = 1_000_000  # one case, or one exported assessment (about 30 kB), as JSON
MAX_JSON_DEPTH = 20  # a case is flat; an exported assessment nests 5 levels deep
MAX_CASE_FIELDS = 1_000  # 129 findings, each by id or label: a few hundred keys at the very most
MAX_NAME_CHARS = 200  # a finding's name (the longest label has 75 characters), key or column
MAX_VALUE_CHARS = 1_000  # one value of one finding ("markedly raised", "<3", "2.9")
MAX_NUMBER = sys.float_info.max  # about 1.8e308: an integer beyond it has no float value
MAX_TABLE_COLUMNS = 1_000  # findings and carried columns (an id, a site, a date) together
MAX_HEADER_CHARS = MAX_TABLE_COLUMNS * (MAX_NAME_CHARS + 3)  # the header row of a CSV file
MAX_TABLE_ROWS = 10_000_000  # cases in one file; more are refused before being read in full: split the file
# What a parquet file of cases decodes to, as its footer tells it (casereading.parquet_decoded_bytes:
# numbers 8 bytes each, text its length and 4). A legitimate row decodes to about 2.1 kB at most:
# every finding assessed and written as its longest level label takes 2,015 bytes (numbers 8),
# the etiology and an id some 60 more. 4 kB a row leaves nearly 2 kB for further carried columns
# (a site, a date, a note) in each of the most rows a file may hold: a legitimate file never
# reaches it; beyond it, split the file.
MAX_TABLE_DECODED_BYTES = MAX_TABLE_ROWS * 4_096  # about 41 GB


def whole_number(value, name: str, *, least: int) -> int:
    """An argument that counts something (numpy integers too, not booleans), at least ``least``.

    Examples
    --------
    >>> whole_number(3, "top", least=1)
    3
    >>> whole_number(0, "top", least=1)
    Traceback (most recent call last):
    ...
    ValueError: top must be a whole number, at least 1 (got 0)
    """
    try:
        number = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        number = None
    if number is None or number < least:
        raise ValueError(f"{name} must be a whole number, at least {least} (got {value!r})")
    return number
