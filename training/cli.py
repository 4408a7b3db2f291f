"""The ``crampdx`` command line.

Every subcommand is a function ``cmd_<name>(args) -> int``; :func:`main` parses the
arguments and turns the errors a user can cause into one clear sentence on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

DISCLAIMER = (
    "crampdx is decision support for clinicians, trained on synthetic cases generated from one "
    "review article; it has not been validated on patients."
)


class UserError(Exception):
    """An error the user can fix; its message is printed as is."""


# --------------------------------------------------------------------------- generate

def cmd_generate(args: argparse.Namespace) -> int:
    import synthetic

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"--out {out}: use a .csv or .parquet file name")
    if args.n < 0:
        raise UserError(f"--n must be zero or more (got {args.n})")
    if not out.parent.exists():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist")
    with _progress(total=args.n, unit="cases", enabled=args.n >= 100_000 and not args.quiet) as advance:
        frame = synthetic.generate(args.n, seed=args.seed, progress=advance)
    _write_table_atomically(frame, out)
    if not args.quiet:
        print(f"wrote {len(frame):,} synthetic cases ({frame.shape[1] - 1} findings + etiology) to {out}")
    return 0


def _progress(total: int, unit: str, enabled: bool):
    """A context manager yielding ``advance(done)``; a tqdm bar when enabled."""
    from contextlib import contextmanager

    @contextmanager
    def bar():
        if not enabled:
            yield lambda done: None
            return
        from tqdm import tqdm

        with tqdm(total=total, unit=f" {unit}", unit_scale=True, file=sys.stderr) as progress:
            yield lambda done: progress.update(done - progress.n)

    return bar()


def _write_table_atomically(frame, out: Path) -> None:
    """Write beside the target and rename, so an interrupted run never leaves half a file."""
    handle, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    try:
        if out.suffix.lower() == ".parquet":
            try:
                frame.to_parquet(tmp, index=False)
            except ImportError:
                raise UserError("writing parquet needs pyarrow: pip install 'crampdx[parquet]'") from None
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# -------------------------------------------------------------------------- knowledge

def knowledge_summary() -> dict:
    """The knowledge base's classes with prior, ICD-10 code and provenance (JSON-ready)."""
    import synthetic

    kb = synthetic.load_knowledge()
    return {
        "title": kb.title,
        "source": kb.source,
        "sha256": kb.sha256,
        "classes": [
            {
                "id": c.id,
                "name": c.name,
                "icd10": c.icd10,
                "icd10_note": c.icd10_note,
                "prior": round(c.prior, 6),
                "prior_src": c.prior_src,
                "summary": c.summary,
                "profiles": [{"id": p.id, "name": p.name, "weight": p.weight} for p in c.profiles if len(c.profiles) > 1],
            }
            for c in kb.classes
        ],
        "decisions": [dict(d) for d in kb.decisions],
        "references": dict(kb.references),
    }


def cmd_knowledge(args: argparse.Namespace) -> int:
    summary = knowledge_summary()
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


# ------------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crampdx",
        description="Differential diagnosis of leg cramps: synthetic data, training, evaluation, prediction.",
        epilog=DISCLAIMER,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="generate synthetic cases from the knowledge base")
    gen.add_argument("--n", type=int, default=10_000, help="number of cases (default 10000)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--out", required=True, help="output file, .csv or .parquet")
    gen.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    gen.set_defaults(handler=cmd_generate)

    know = sub.add_parser("knowledge", help="list the etiology classes with prior, ICD-10 code and provenance")
    know.add_argument("--json", action="store_true", help="print one JSON object")
    know.set_defaults(handler=cmd_knowledge)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UserError as error:
        print(f"crampdx {args.command}: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # SchemaError, KnowledgeError, CaseError: messages name the field
        print(f"crampdx {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crampdx {args.command}: interrupted; nothing was overwritten", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
