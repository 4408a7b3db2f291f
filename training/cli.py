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

from model.artifact import ArtifactError

from model.report import DISCLAIMER, percent


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


def cmd_findings(args: argparse.Namespace) -> int:
    from model.schema import load_schema

    schema = load_schema()
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
    print("A case file maps ids (or labels) to values; binary findings also take yes/no, true/false, 1/0.")
    return 0


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


# ------------------------------------------------------------------------------ train

def cmd_train(args: argparse.Namespace) -> int:
    from model.artifact import default_artifact_dir
    from training.pipeline import train
    from training.train import Hyperparameters

    if args.mix and not args.data:
        raise UserError("--mix adds synthetic cases to --data; give --data too")
    if args.cases < 1000 and not (args.data and not args.mix):
        raise UserError(f"--cases {args.cases}: train on at least 1000 synthetic cases")
    overrides = {k: v for k, v in {
        "learning_rate": args.learning_rate, "max_depth": args.max_depth, "max_leaf_nodes": args.max_leaf_nodes,
        "min_samples_leaf": args.min_samples_leaf, "l2_regularization": args.l2_regularization, "max_iter": args.max_iter,
    }.items() if v is not None}
    out = Path(args.out) if args.out else default_artifact_dir()
    train(out, cases=args.cases, seed=args.seed, hyperparameters=Hyperparameters(**overrides),
          data=args.data, mix=args.mix, evaluation_cases=args.evaluation_cases,
          report=(lambda line: None) if args.quiet else print)
    if not args.quiet:
        print(f"\nModel saved to {out} (model card: {out / 'model_card.md'}).\n{DISCLAIMER}")
    return 0


# --------------------------------------------------------------------------- evaluate

def cmd_evaluate(args: argparse.Namespace) -> int:
    from model.diagnoser import Diagnoser
    from training.evaluate import evaluate, evaluation_seed, headline
    from training.report import plot_confusion_matrix

    diagnoser = Diagnoser.load(args.model)
    training_seed = diagnoser.manifest_.get("seed")
    seed = evaluation_seed(training_seed) if args.seed is None else args.seed
    if seed == training_seed:
        raise UserError(f"--seed {seed} is the training seed; evaluate on cases the model has not seen")
    figures = evaluate(diagnoser, args.n, seed)
    png = Path(args.png)
    plot_confusion_matrix(figures, png)
    if args.json:
        print(json.dumps({**figures, "confusion_matrix_png": str(png)}, indent=2))
        return 0
    print(f"Evaluation on {args.n:,} fresh synthetic cases (seed {seed}); model {diagnoser.path_}")
    rows = headline(figures)
    width = max(map(len, rows))
    for name, value in rows.items():
        print(f"  {name:<{width}}  {value:.4f}")
    print("\nPer class (precision / recall / cases):")
    for cid, v in figures["model"]["per_class"].items():
        print(f"  {cid:<24} {v['precision']:.3f} / {v['recall']:.3f} / {v['support']}")
    print(f"\nConfusion matrix saved to {png}.\n{DISCLAIMER}")
    return 0


# ---------------------------------------------------------------------------- predict

def _read_case_file(path: Path):
    """A JSON file holds one case; a CSV (or parquet) file holds many."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        from model.report import findings_from_json

        try:
            return "one", findings_from_json(path.read_bytes())
        except ValueError as error:
            raise UserError(f"{path}: {error}") from None
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        try:
            frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
        except Exception as error:  # pandas raises many kinds for a malformed file
            raise UserError(f"{path}: could not be read ({error})") from None
        return "many", frame
    raise UserError(f"{path}: use a .json file for one case or a .csv/.parquet file for many")


def _print_report(report: dict, diagnoser) -> None:
    for flag in report["red_flags"]:
        print(f"[{flag['severity'].upper()}] {flag['title']}: {flag['message']}")
    if report["red_flags"]:
        print()
    print("Differential (probability, ICD-10):")
    for rank, cause in enumerate(report["differential"], 1):
        print(f"  {rank:2d}. {cause['name']:<52} {percent(cause['probability']):>6}  {cause['icd10'] or ''}")
    if report["atypical"]["is_atypical"]:
        print(f"\nNote: {report['atypical']['message']}")
    if "explanation" in report:
        ex = report["explanation"]
        print(f"\nWhy {ex['cause_name']} (log-odds; base {ex['base_value']:+.2f} -> score {ex['value']:+.2f}):")
        for c in ex["contributions"]:
            print(f"  {c['contribution']:+.2f}  {c['text']}")
        print(f"  {ex['not_assessed']:+.2f}  {ex['n_not_assessed']} findings not assessed")
    if report["next_best_findings"]:
        print("\nAsk or examine next:")
        for n in report["next_best_findings"]:
            print(f"  - {n['label']} ({n['section']}): expected gain {n['expected_information_gain']:.2f} bits, "
                  f"{n['chance_top_cause_changes']:.0%} chance the top cause changes")
    print(f"\n{DISCLAIMER}")


def cmd_predict(args: argparse.Namespace) -> int:
    from model.diagnoser import Diagnoser
    from model.report import case_report

    kind, content = _read_case_file(Path(args.file))
    diagnoser = Diagnoser.load(args.model)
    if kind == "one":
        report = case_report(diagnoser, diagnoser.case(content), top=args.top, explain="top" if args.explain else None)
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if args.json:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            _print_report(report, diagnoser)
        return 0
    return _predict_many(diagnoser, content, args)


def _predict_many(diagnoser, frame, args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from model.schema import SchemaError

    label = frame.pop("etiology") if "etiology" in frame.columns else None
    try:
        proba = diagnoser.predict_proba(frame)
    except SchemaError as error:
        raise UserError(f"{args.file}: {error}") from None
    top = min(args.top, proba.shape[1])
    order = np.argsort(-proba.to_numpy(), axis=1, kind="stable")[:, :top]
    ids = np.asarray(proba.columns)
    out = pd.DataFrame({"row": np.arange(1, len(proba) + 1)})
    if label is not None:
        out["etiology"] = label.to_numpy()
    for r in range(top):
        out[f"cause_{r + 1}"] = ids[order[:, r]]
        out[f"probability_{r + 1}"] = np.take_along_axis(proba.to_numpy(), order[:, [r]], axis=1)[:, 0].round(6)
    if args.out:
        _write_table_atomically(out, Path(args.out))
    if args.json:
        print(out.to_json(orient="records"))
    else:
        if not args.out:
            print(out.to_string(index=False, max_rows=50))
        else:
            print(f"ranked causes for {len(out):,} cases written to {args.out}")
        print(f"\n{DISCLAIMER}")
    return 0


# ------------------------------------------------------------------------------- main

def _section_ids() -> list[str]:
    from model.schema import load_schema

    return list(load_schema().sections)


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

    fi = sub.add_parser("findings", help="list the findings a case can hold: ids, labels, levels, units and ranges")
    fi.add_argument("--section", choices=list(_section_ids()), help="only this section")
    fi.add_argument("--json", action="store_true", help="print the finding schema as one JSON object")
    fi.set_defaults(handler=cmd_findings)

    from training.pipeline import DEFAULT_CASES, DEFAULT_EVALUATION_CASES

    tr = sub.add_parser("train", help="generate cases, fit, calibrate, evaluate and save a model")
    tr.add_argument("--cases", type=int, default=DEFAULT_CASES, help=f"synthetic training cases (default {DEFAULT_CASES})")
    tr.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tr.add_argument("--out", help="artifact directory (default $CRAMPDX_MODEL or model/artifacts/default)")
    tr.add_argument("--data", help="your own labelled cases (.csv or .parquet with an 'etiology' column)")
    tr.add_argument("--mix", action="store_true", help="with --data: add --cases synthetic cases")
    tr.add_argument("--evaluation-cases", type=int, default=DEFAULT_EVALUATION_CASES, help="fresh cases for the evaluation stage")
    tr.add_argument("--learning-rate", type=float)
    tr.add_argument("--max-depth", type=int)
    tr.add_argument("--max-leaf-nodes", type=int)
    tr.add_argument("--min-samples-leaf", type=int)
    tr.add_argument("--l2-regularization", type=float)
    tr.add_argument("--max-iter", type=int)
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(handler=cmd_train)

    ev = sub.add_parser("evaluate", help="evaluate a model on fresh synthetic cases against the exact posterior")
    ev.add_argument("--model", help="artifact directory (default $CRAMPDX_MODEL or model/artifacts/default)")
    ev.add_argument("--n", type=int, default=50_000, help="number of fresh cases (default 50000)")
    ev.add_argument("--seed", type=int, help="seed of the fresh cases (default: the training seed + 1000003)")
    ev.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ev.add_argument("--png", default="confusion_matrix.png", help="where to save the confusion matrix")
    ev.set_defaults(handler=cmd_evaluate)

    pr = sub.add_parser("predict", help="rank the causes of one case (.json) or many (.csv)")
    pr.add_argument("file", help="one case as JSON (finding -> value), or a CSV/parquet of cases")
    pr.add_argument("--model", help="artifact directory (default $CRAMPDX_MODEL or model/artifacts/default)")
    pr.add_argument("--top", type=int, default=10, help="how many causes to show (default 10)")
    pr.add_argument("--explain", action="store_true", help="explain the top cause finding by finding")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.add_argument("--out", help="write the result to this file (JSON for one case, CSV for many)")
    pr.set_defaults(handler=cmd_predict)
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
    except ArtifactError as error:  # missing, tampered or mismatched model
        print(f"crampdx {args.command}: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # SchemaError, KnowledgeError, CaseError: messages name the field
        print(f"crampdx {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crampdx {args.command}: interrupted; nothing was overwritten", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`crampdx findings | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
