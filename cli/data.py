"""``crampdx generate``, ``crampdx findings`` and ``crampdx knowledge``: the data and the knowledge."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crampdx import DISCLAIMER
from crampdx.cli.errors import UserError
from crampdx.cli.tables import write_frames_atomically
from crampdx.contract.schema_file import load_schema
from crampdx.files import check_output_path
from crampdx.progress import progress_bar
from crampdx.synthetic import load_knowledge
from crampdx.synthetic.generate import generate_chunks
from crampdx.synthetic.summary import knowledge_summary

__all__ = ["cmd_findings", "cmd_generate", "cmd_knowledge"]


def cmd_generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"--out {out}: use a .csv or .parquet file name")
    if args.n < 0:
        raise UserError(f"--n must be zero or more (got {args.n})")
    check_output_path(out, "--out", "cases.csv")
    knowledge = load_knowledge()
    with progress_bar(total=args.n, unit="cases", enabled=args.n >= 100_000 and not args.quiet) as advance:
        # each chunk is written as it is drawn: the bar counts cases on disk
        rows = write_frames_atomically(generate_chunks(args.n, seed=args.seed, knowledge=knowledge), out,
                                       written=advance)
    if not args.quiet:
        print(f"wrote {rows:,} synthetic cases ({len(knowledge.schema)} findings + etiology) to {out}")
    return 0


def cmd_findings(args: argparse.Namespace) -> int:
    schema = load_schema()
    if args.section is not None and args.section not in schema.sections:
        raise UserError(f"--section {args.section!r}: expected one of {', '.join(schema.sections)}")
    sections = [args.section] if args.section else list(schema.sections)
    if args.json:
        document = schema.to_dict()
        document["findings"] = [f for f in document["findings"] if f["section"] in sections]
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    for section in sections:
        findings = schema.in_section(section)
        print(f"{schema.sections[section]} ({len(findings)})")
        width = max(len(f.id) for f in findings)
        for f in findings:
            if f.is_numeric:
                accepted = (f"{f.unit}; reference {f.reference[0]:g}–{f.reference[1]:g}, "
                            f"plausible {f.hard[0]:g}–{f.hard[1]:g}")
            else:
                accepted = " | ".join(level.id for level in f.levels)
            print(f"  {f.id:<{width}}  {f.label} [{accepted}]")
        print()
    print("A case file maps ids (or labels) to values; binary findings also take yes/no, true/false, 1/0;\n"
          "numeric findings also take a result known only in words (low, normal, high) or a bound (<3.5, >10).")
    return 0


def cmd_knowledge(args: argparse.Namespace) -> int:
    summary = knowledge_summary(load_knowledge())
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    rows = [(c["id"], c["icd10"] or "—", f"{c['prior']:.3f}", c["prior_src"]) for c in summary["classes"]]
    widths = [max(len(r[i]) for r in rows + [("class", "ICD-10", "prior", "")]) for i in range(3)]
    print(f"{summary['title']} — {len(rows)} classes ({summary['source']}, sha256 {summary['sha256'][:12]})")
    print(f"{'class':<{widths[0]}}  {'ICD-10':<{widths[1]}}  {'prior':>{widths[2]}}  provenance")
    for cid, icd, prior, src in rows:
        print(f"{cid:<{widths[0]}}  {icd:<{widths[1]}}  {prior:>{widths[2]}}  {src}")
    print("\nNot classes:")
    for d in summary["decisions"]:
        print(f"- {d['cause']}: {d['decision']} into {d['into']} ({d['reason']})")
    print(f"\n{DISCLAIMER}")
    return 0
