"""``crampdx predict``: one case (JSON) assessed in full, or a table of cases ranked."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pandas as pd

from crampdx import DISCLAIMER
from crampdx.cli.errors import UserError
from crampdx.cli.tables import write_frames_atomically
from crampdx.contract import SchemaError, findings_from_json, validate_case
from crampdx.contract.casechunks import CHUNK_ROWS, read_case_chunks, resolve_case_chunk
from crampdx.contract.limits import MAX_CASE_JSON_BYTES
from crampdx.files import check_output_path, write_text_atomically
from crampdx.model.diagnoser import Diagnoser
from crampdx.progress import progress_bar
from crampdx.render.batch import batch_document, ranked_table
from crampdx.render.text import assessment_text

if TYPE_CHECKING:
    from crampdx.interop.fhir import FhirFindings

__all__ = ["cmd_predict"]

NEXT_FINDINGS = 5
FHIR_MAX_BYTES = 10 * 1024 * 1024  # a patient's records; a larger file is an export, not one case


def _read_case_file(path: Path):
    """A JSON file holds one case; a CSV (or parquet) file holds many."""
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a case file; give a .json file for one case or a .csv/.parquet file for many")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        if path.stat().st_size > MAX_CASE_JSON_BYTES:  # refused before it is read
            raise UserError(f"{path} has {path.stat().st_size:,} bytes; a case is at most {MAX_CASE_JSON_BYTES:,} bytes "
                            "of JSON (a table of many cases goes in a .csv or .parquet file)")
        try:
            with path.open("rb") as handle:  # bounded even if the file grows after the check
                return "one", findings_from_json(handle.read(MAX_CASE_JSON_BYTES + 1))
        except OSError as error:
            raise UserError(f"{path}: could not be read ({error.strerror or error})") from None
        except ValueError as error:
            raise UserError(f"{path}: {error}") from None
    if suffix in (".csv", ".parquet"):
        return "many", path  # read in chunks as it is ranked
    raise UserError(f"{path}: use a .json file for one case or a .csv/.parquet file for many")


def _read_fhir_file(path: Path) -> tuple[FhirFindings, list[str]]:
    """A FHIR R4B Bundle or resource (JSON, at most 10 MB) read into findings with their
    sources, and the lines that tell a reader where each came from."""
    # fhir.resources takes ~0.25 s to import: only a --fhir run pays it, not every file of cases
    from crampdx.interop.fhir import describe_provenance, findings_from_fhir, resources_from_json

    if not path.is_file():
        raise UserError(f"{path}: no such file" if not path.exists() else
                        f"{path} is a directory, not a FHIR file; give a FHIR R4B Bundle or resource as JSON")
    size = path.stat().st_size
    if size > FHIR_MAX_BYTES:
        raise UserError(f"{path} is {size / 1024 / 1024:.1f} MB, more than the 10 MB crampdx reads as one "
                        "patient's records; export only this patient's recent records")
    try:
        fhir = findings_from_fhir(resources_from_json(path.read_bytes()))
    except ValueError as error:
        raise UserError(f"{path}: {error}") from None
    return fhir, describe_provenance(fhir)


def cmd_predict(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    fhir, provenance = _read_fhir_file(Path(args.file)) if args.fhir else (None, [])
    kind, content = ("one", fhir.findings) if fhir is not None else _read_case_file(Path(args.file))
    if out is not None:  # refuse an unwritable --out before any work is done
        check_output_path(out, "--out", "report.json" if kind == "one" else "ranked.csv")
        if out.exists() and out.samefile(args.file):
            raise UserError(f"--out {out} is the case file itself; writing there would replace your cases, so give another name")
        if kind == "one" and out.suffix.lower() != ".json":
            raise UserError(f"--out {out}: one case's assessment is written as JSON; give a file name ending in .json")
    if kind == "one":
        case = validate_case(content)  # a bad case is reported even before a model exists
        diagnoser = Diagnoser.load(args.model)
        assessment = diagnoser.assess(case, top=args.top, explain=1 if args.explain else 0, next_findings=NEXT_FINDINGS)
        report = assessment.to_dict() if fhir is None else {"assessment": assessment.to_dict(), "fhir": fhir.to_dict()}
        document = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)
        if out is not None:
            write_text_atomically(document + "\n", out)
        if args.json:
            print(document)
        else:
            print("\n".join([*provenance, "", assessment_text(assessment)]) if fhir is not None
                  else assessment_text(assessment))
        return 0
    return _predict_many(Diagnoser.load(args.model), content, args)


def _predict_many(diagnoser: Diagnoser, path: Path, args: argparse.Namespace) -> int:
    """Read, validate, rank and write a table of cases a chunk at a time (bounded memory when
    written to a table file), with a progress bar for a large file."""
    rows = _estimated_rows(path)
    table_out = args.out is not None and Path(args.out).suffix.lower() != ".json"
    held: list[pd.DataFrame] = []  # for JSON or the screen: one document, so the whole table is held

    def ranked() -> Iterator[pd.DataFrame]:
        for frame in _ranked_chunks(diagnoser, path, args.top):
            if args.json or not table_out:
                held.append(frame)
            yield frame

    with progress_bar(total=rows, unit="cases", enabled=rows > CHUNK_ROWS) as advance:
        if table_out:
            count = write_frames_atomically(ranked(), Path(args.out), example="ranked.csv", written=advance)
        else:
            count = 0
            for frame in ranked():
                count += len(frame)
                advance(count)
    out = pd.concat(held, ignore_index=True) if held else None
    if args.out and not table_out:
        document = batch_document(out, diagnoser.identity, DISCLAIMER)
        write_text_atomically(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n", Path(args.out),
                              example="ranked.json")
    if args.json:
        print(json.dumps(batch_document(out, diagnoser.identity, DISCLAIMER), ensure_ascii=False, allow_nan=False))
        if table_out:
            print(DISCLAIMER, file=sys.stderr)
        return 0
    if args.out:
        print(f"ranked causes for {count:,} cases written to {args.out}")
        if table_out:  # a CSV has nowhere to carry the disclaimer: say it where the user looks
            print(DISCLAIMER, file=sys.stderr)
        else:
            print(f"\n{DISCLAIMER}")
    else:
        print(out.to_string(index=False, max_rows=50))
        print(f"\n{DISCLAIMER}")
    return 0


def _ranked_chunks(diagnoser: Diagnoser, path: Path, top: int) -> Iterator[pd.DataFrame]:
    """The ranked table, one chunk of the case file at a time (rows numbered as in the file).

    Once a chunk has a problem nothing more is ranked, but the rest of the file is still
    validated, so that the one error names every problem in the file, as for a small file.
    """
    first_row, problems = 1, []
    try:
        for frame in read_case_chunks(path, diagnoser.schema):
            try:
                table = resolve_case_chunk(frame, diagnoser.schema, first_row, keep_other=True)
            except SchemaError as error:
                problems.append(str(error).removeprefix(f"{path}: "))
            first_row += len(frame)
            if problems:
                continue
            if first_row - len(frame) == 1 and table.other.shape[1]:
                names = ", ".join(map(str, table.other.columns))
                print(f"note: {names} {'is not a finding' if table.other.shape[1] == 1 else 'are not findings'}; "
                      "carried through to the output unchanged", file=sys.stderr)
            proba = diagnoser.predict_proba_codes(table.codes, table.ranges)
            try:
                yield ranked_table(proba, diagnoser.class_ids_, top, label=table.label, other=table.other,
                                   first_row=first_row - len(frame))
            except ValueError as error:  # a carried column clashing with an output column
                problems.append(str(error))
    except SchemaError as error:  # the file itself (unreadable, no cases, unknown columns)
        problems.append(str(error).removeprefix(f"{path}: "))
    if problems:
        raise UserError(f"{path}: " + "; ".join(problems))


def _estimated_rows(path: Path) -> int:
    """Rows of a parquet file (from its metadata) or lines of a CSV file after the header
    (a quoted line break counts twice: an estimate, for the progress bar only)."""
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq  # optional dependency: only a parquet file needs it

            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # unreadable or no pyarrow: reading it says why, with one sentence
            return 0
    lines = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            lines += block.count(b"\n")
    return max(lines - 1, 0)
