"""``crampdx predict``: one case (JSON) assessed in full, or a table of cases ranked."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crampdx import DISCLAIMER
from crampdx.cli.data import write_table_atomically
from crampdx.cli.errors import UserError
from crampdx.contract import SchemaError, findings_from_json, read_case_table, resolve_case_table, validate_case
from crampdx.contract.limits import MAX_CASE_JSON_BYTES
from crampdx.files import check_output_path, write_text_atomically
from crampdx.interop.fhir import FhirFindings, describe_provenance, findings_from_fhir, resources_from_json
from crampdx.model.diagnoser import Diagnoser
from crampdx.render.batch import batch_document, ranked_table
from crampdx.render.text import assessment_text

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
        return "many", read_case_table(path)  # SchemaError: one sentence naming the file
    raise UserError(f"{path}: use a .json file for one case or a .csv/.parquet file for many")


def _read_fhir_file(path: Path) -> FhirFindings:
    """A FHIR R4B Bundle or resource (JSON, at most 10 MB) read into findings with their sources."""
    if not path.is_file():
        raise UserError(f"{path}: no such file" if not path.exists() else
                        f"{path} is a directory, not a FHIR file; give a FHIR R4B Bundle or resource as JSON")
    size = path.stat().st_size
    if size > FHIR_MAX_BYTES:
        raise UserError(f"{path} is {size / 1024 / 1024:.1f} MB, more than the 10 MB crampdx reads as one "
                        "patient's records; export only this patient's recent records")
    try:
        return findings_from_fhir(resources_from_json(path.read_bytes()))
    except ValueError as error:
        raise UserError(f"{path}: {error}") from None


def cmd_predict(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    fhir = _read_fhir_file(Path(args.file)) if args.fhir else None
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
            print("\n".join([*describe_provenance(fhir), "", assessment_text(assessment)]) if fhir is not None
                  else assessment_text(assessment))
        return 0
    return _predict_many(Diagnoser.load(args.model), content, args)


def _predict_many(diagnoser: Diagnoser, frame, args: argparse.Namespace) -> int:
    try:
        table = resolve_case_table(frame, diagnoser.schema, keep_other=True)
    except SchemaError as error:
        raise UserError(f"{args.file}: {error}") from None
    proba = diagnoser.predict_proba_codes(table.codes, table.ranges)
    try:
        out = ranked_table(proba, diagnoser.class_ids_, args.top, label=table.label, other=table.other)
    except ValueError as error:
        raise UserError(f"{args.file}: {error}") from None
    if table.other.shape[1]:
        names = ", ".join(map(str, table.other.columns))
        print(f"note: {names} {'is not a finding' if table.other.shape[1] == 1 else 'are not findings'}; "
              "carried through to the output unchanged", file=sys.stderr)
    table_out = args.out is not None and Path(args.out).suffix.lower() != ".json"
    if args.out:
        target = Path(args.out)
        if table_out:
            write_table_atomically(out, target, example="ranked.csv")
        else:
            document = batch_document(out, diagnoser.identity, DISCLAIMER)
            write_text_atomically(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n", target, example="ranked.json")
    if args.json:
        print(json.dumps(batch_document(out, diagnoser.identity, DISCLAIMER), ensure_ascii=False, allow_nan=False))
        if table_out:
            print(DISCLAIMER, file=sys.stderr)
        return 0
    if args.out:
        print(f"ranked causes for {len(out):,} cases written to {args.out}")
        if table_out:  # a CSV has nowhere to carry the disclaimer: say it where the user looks
            print(DISCLAIMER, file=sys.stderr)
        else:
            print(f"\n{DISCLAIMER}")
    else:
        print(out.to_string(index=False, max_rows=50))
        print(f"\n{DISCLAIMER}")
    return 0
