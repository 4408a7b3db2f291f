"""The ``crampdx`` command line.

Every subcommand is a function ``cmd_<name>(args) -> int``; :func:`main` parses the
arguments and turns the errors a user can cause into one clear sentence on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
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
    _check_output_path(out, "--out", "cases.csv")
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


def _check_output_path(path: Path, option: str, example: str = "result.csv") -> None:
    """Refuse, before any work is done, an output path that cannot be written as a file."""
    if path.is_dir():
        raise UserError(f"{option} {path} is a directory; give a file name, e.g. {path / example}")
    parent = path.parent
    if not parent.exists():
        raise UserError(f"{option} {path}: the folder {parent} does not exist; create it or choose another path")
    if not parent.is_dir():
        raise UserError(f"{option} {path}: {parent} is a file, not a folder; choose another path")


def _write_atomically(out: Path, write: Callable[[str], None], option: str = "--out", example: str = "result.csv") -> None:
    """Write through ``write(temporary_path)`` beside the target, then rename: an interrupted
    or failed write never leaves half a file and never damages what was there before."""
    _check_output_path(out, option, example)
    tmp = None
    try:
        handle, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=f".tmp{out.suffix}")
        os.close(handle)
        write(tmp)
        if out.exists():
            shutil.copymode(out, tmp)
        else:  # mkstemp makes the file private; give it the permissions a new file would get
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    except OSError as error:
        raise UserError(f"{option} {out}: could not be written ({error.strerror or error}); choose another path") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _write_table_atomically(frame, out: Path, option: str = "--out", example: str = "result.csv") -> None:
    """A frame as parquet (for a .parquet name) or CSV, written atomically."""
    def write(tmp: str) -> None:
        if out.suffix.lower() == ".parquet":
            try:
                frame.to_parquet(tmp, index=False)
            except ImportError:
                raise UserError("writing parquet needs pyarrow: pip install 'crampdx[parquet]'") from None
        else:
            frame.to_csv(tmp, index=False)

    _write_atomically(out, write, option, example)


def _write_text_atomically(text: str, out: Path, option: str = "--out", *, example: str = "report.json") -> None:
    _write_atomically(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), option, example)


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

WEAK_RATIO = 0.95  # a model below this share of the exact posterior's top-1 accuracy is called weak


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
    try:
        manifest = train(out, cases=args.cases, seed=args.seed, hyperparameters=Hyperparameters(**overrides),
                         data=args.data, mix=args.mix, evaluation_cases=args.evaluation_cases,
                         report=(lambda line: None) if args.quiet else print)
    except OSError as error:
        where = error.filename or out
        raise UserError(f"{where}: could not be written ({error.strerror or error}); choose another --out") from None
    if not args.quiet:
        print(f"\nModel saved to {out} (model card: {out / 'model_card.md'}).\n{DISCLAIMER}")
    warning = weak_model_warning(manifest)
    if warning:
        print(f"\n{warning}", file=sys.stderr)
    return 0


def weak_model_warning(manifest: dict | None) -> str | None:
    """A warning when the model's top-1 accuracy is well below the exact posterior's, with
    the likely reasons (too few cases, the iteration cap reached); None otherwise."""
    from training.pipeline import DEFAULT_CASES

    if not manifest:
        return None
    ratio = manifest.get("metrics", {}).get("posterior", {}).get("top1_ratio_to_posterior")
    if ratio is None or ratio >= WEAK_RATIO:
        return None
    reasons = []
    max_iter = manifest.get("hyperparameters", {}).get("max_iter")
    if max_iter is not None and manifest.get("n_iterations", 0) >= max_iter:
        reasons.append(f"it reached the --max-iter cap of {max_iter} iterations without early stopping "
                       "(raise --max-iter)")
    sizes = manifest.get("sizes", {})
    n_cases = sizes.get("training", 0) + sizes.get("calibration", 0)
    if n_cases < DEFAULT_CASES:
        labelled = "labelled" in str(manifest.get("data_source", ""))
        remedy = "add labelled cases or --mix synthetic ones" if labelled else "raise --cases"
        reasons.append(f"it learned from only {n_cases:,} cases (the default is {DEFAULT_CASES:,} synthetic cases; {remedy})")
    why = (f"likely because {' and '.join(reasons)}" if reasons
           else "try more cases, more iterations or the default hyperparameters")
    n_eval = manifest.get("metrics", {}).get("n")
    noisy = f" (measured on only {n_eval:,} evaluation cases, so the figure is rough)" if n_eval and n_eval < 5000 else ""
    return (f"Warning: this model is weak: its top-1 accuracy is {ratio:.0%} of the exact posterior's{noisy}, "
            f"below the {WEAK_RATIO:.0%} crampdx aims for; {why}. "
            "It was saved, but retrain it before relying on its rankings.")


# --------------------------------------------------------------------------- evaluate

def cmd_evaluate(args: argparse.Namespace) -> int:
    from model.diagnoser import Diagnoser
    from training.evaluate import evaluate, evaluation_seed, headline
    from training.report import plot_confusion_matrix

    png = Path(args.png)
    if png.suffix.lower() != ".png":
        raise UserError(f"--png {png}: use a file name ending in .png")
    _check_output_path(png, "--png", "confusion_matrix.png")  # before the evaluation, not after
    diagnoser = Diagnoser.load(args.model)
    training_seed = diagnoser.manifest_.get("seed")
    seed = evaluation_seed(training_seed) if args.seed is None else args.seed
    if seed == training_seed:
        raise UserError(f"--seed {seed} is the training seed; evaluate on cases the model has not seen")
    figures = evaluate(diagnoser, args.n, seed)
    replaced = png.exists()
    _write_atomically(png, lambda tmp: plot_confusion_matrix(figures, Path(tmp)), "--png", "confusion_matrix.png")
    where = f"Confusion matrix saved to {png.resolve()}{' (replacing the file that was there)' if replaced else ''}."
    if args.json:
        print(json.dumps({**figures, "confusion_matrix_png": str(png.resolve())}, indent=2))
        print(where, file=sys.stderr)  # stdout stays one JSON object
        return 0
    print(f"Evaluation on {args.n:,} fresh synthetic cases (seed {seed}); model {diagnoser.path_}")
    rows = headline(figures)
    width = max(map(len, rows))
    for name, value in rows.items():
        print(f"  {name:<{width}}  {value:.4f}")
    print("\nPer class (precision / recall / cases):")
    for cid, v in figures["model"]["per_class"].items():
        print(f"  {cid:<24} {v['precision']:.3f} / {v['recall']:.3f} / {v['support']}")
    print(f"\n{where}\n{DISCLAIMER}")
    return 0


# ---------------------------------------------------------------------------- predict

def _read_case_file(path: Path):
    """A JSON file holds one case; a CSV (or parquet) file holds many."""
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a case file; give a .json file for one case or a .csv/.parquet file for many")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        from model.report import findings_from_json

        try:
            return "one", findings_from_json(path.read_bytes())
        except OSError as error:
            raise UserError(f"{path}: could not be read ({error.strerror or error})") from None
        except ValueError as error:
            raise UserError(f"{path}: {error}") from None
    if suffix in (".csv", ".parquet"):
        from training.casefile import read_case_table

        return "many", read_case_table(path)  # SchemaError: one sentence naming the file
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
        print(f"\n{explanation_heading(ex)}:")
        for c in ex["contributions"]:
            print(f"  {c['contribution']:+.2f}  {c['text']}")
        print(f"  {ex['not_assessed']:+.2f}  {ex['n_not_assessed']} findings not assessed")
    if report["next_best_findings"]:
        print("\nAsk or examine next:")
        for n in report["next_best_findings"]:
            print(f"  - {n['label']} ({n['section']}): expected gain {n['expected_information_gain']:.2f} bits, "
                  f"{n['chance_top_cause_changes']:.0%} chance the top cause changes")
    print(f"\n{DISCLAIMER}")


def explanation_heading(ex: dict) -> str:
    """The line above an explanation. The values are the model's calibrated scores (logits / T),
    not the log-odds of the cause: only the softmax over every cause's score is a probability."""
    return (f"Why {ex['cause_name']} (score; average case {ex['base_value']:+.2f} → this case {ex['value']:+.2f}; "
            "probabilities are the softmax of the causes' scores)")


def cmd_predict(args: argparse.Namespace) -> int:
    from model.case import validate_case
    from model.diagnoser import Diagnoser
    from model.report import case_report

    out = Path(args.out) if args.out else None
    kind, content = _read_case_file(Path(args.file))
    if out is not None:  # refuse an unwritable --out before any work is done
        _check_output_path(out, "--out", "report.json" if kind == "one" else "ranked.csv")
        if out.exists() and out.samefile(args.file):
            raise UserError(f"--out {out} is the case file itself; writing there would replace your cases, so give another name")
        if kind == "one" and out.suffix.lower() != ".json":
            raise UserError(f"--out {out}: one case's report is written as JSON; give a file name ending in .json")
    if kind == "one":
        case = validate_case(content)  # a bad case is reported even before a model exists
        diagnoser = Diagnoser.load(args.model)
        report = case_report(diagnoser, case, top=args.top, explain="top" if args.explain else None)
        if out is not None:
            _write_text_atomically(json.dumps(report, indent=2, ensure_ascii=False) + "\n", out)
        if args.json:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            _print_report(report, diagnoser)
        return 0
    return _predict_many(Diagnoser.load(args.model), content, args)


_RESERVED = ("row",)  # output columns a carried-through column must not shadow


def _predict_many(diagnoser, frame, args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from model.schema import SchemaError
    from training.casefile import resolve_case_table

    try:
        table = resolve_case_table(frame, diagnoser.schema, keep_other=True)
    except SchemaError as error:
        raise UserError(f"{args.file}: {error}") from None
    proba = diagnoser.predict_proba_codes(table.codes)
    top = min(args.top, proba.shape[1])
    order = np.argsort(-proba, axis=1, kind="stable")[:, :top]
    ids = np.asarray(diagnoser.class_ids_)
    out = pd.DataFrame({"row": np.arange(1, len(proba) + 1)})
    if table.label is not None:
        out["etiology"] = table.label.to_numpy()
    ranked = {}
    for r in range(top):
        ranked[f"cause_{r + 1}"] = ids[order[:, r]]
        ranked[f"probability_{r + 1}"] = np.take_along_axis(proba, order[:, [r]], axis=1)[:, 0].round(6)
    clashes = [str(c) for c in table.other.columns if str(c) in _RESERVED or str(c) in ranked]
    if clashes:
        raise UserError(f"{args.file}: column {', '.join(map(repr, clashes))} would clash with an output column of the "
                        "same name; rename it")
    for column in table.other.columns:  # carried through unchanged (ids, sites, dates …)
        out[column] = table.other[column].to_numpy()
    for column, values in ranked.items():
        out[column] = values
    if table.other.shape[1]:
        names = ", ".join(map(str, table.other.columns))
        print(f"note: {names} {'is not a finding' if table.other.shape[1] == 1 else 'are not findings'}; "
              "carried through to the output unchanged", file=sys.stderr)

    def document() -> dict:  # the JSON form carries the disclaimer with the rankings
        return {"disclaimer": DISCLAIMER,
                "model": {"created": diagnoser.manifest_.get("created"), "model_sha256": diagnoser.manifest_.get("model_sha256")},
                "cases": json.loads(out.to_json(orient="records"))}

    table_out = args.out is not None and Path(args.out).suffix.lower() != ".json"
    if args.out:
        target = Path(args.out)
        if table_out:
            _write_table_atomically(out, target, example="ranked.csv")
        else:
            _write_text_atomically(json.dumps(document(), indent=2, ensure_ascii=False) + "\n", target, example="ranked.json")
    if args.json:
        print(json.dumps(document(), ensure_ascii=False))
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


# ------------------------------------------------------------------------------- main

def _section_ids() -> list[str]:
    from model.schema import load_schema

    return list(load_schema().sections)


def _parse_number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _at_least(minimum: float, kind: type = int, *, exclusive: bool = False, meaning: str | None = None):
    """An argparse type: a number of ``kind`` that is >= ``minimum`` (> with ``exclusive``)."""
    def parse(text: str):
        value = _parse_number(text, kind)
        if value < minimum or (exclusive and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {meaning} (got {text})")
        return value
    return parse


positive_int = _at_least(1, meaning="a positive integer")  # counts
non_negative_int = _at_least(0, meaning="zero or a positive integer")  # seeds
_at_least_two = _at_least(2, meaning="2 or more")
positive_float = _at_least(0.0, float, exclusive=True, meaning="a positive number")
non_negative_float = _at_least(0.0, float, meaning="zero or a positive number")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crampdx",
        description="Differential diagnosis of leg cramps: synthetic data, training, evaluation, prediction.",
        epilog=DISCLAIMER,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="generate synthetic cases from the knowledge base")
    gen.add_argument("--n", type=int, default=10_000, help="number of cases (default 10000)")
    gen.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
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
    tr.add_argument("--cases", type=positive_int, default=DEFAULT_CASES, help=f"synthetic training cases (default {DEFAULT_CASES})")
    tr.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    tr.add_argument("--out", help="artifact directory (default $CRAMPDX_MODEL or model/artifacts/default)")
    tr.add_argument("--data", help="your own labelled cases (.csv or .parquet with an 'etiology' column)")
    tr.add_argument("--mix", action="store_true", help="with --data: add --cases synthetic cases")
    tr.add_argument("--evaluation-cases", type=positive_int, default=DEFAULT_EVALUATION_CASES,
                    help=f"fresh cases for the evaluation stage (default {DEFAULT_EVALUATION_CASES})")
    tr.add_argument("--learning-rate", type=positive_float)
    tr.add_argument("--max-depth", type=positive_int)
    tr.add_argument("--max-leaf-nodes", type=_at_least_two)
    tr.add_argument("--min-samples-leaf", type=positive_int)
    tr.add_argument("--l2-regularization", type=non_negative_float)
    tr.add_argument("--max-iter", type=positive_int, help="cap on boosting iterations (early stopping usually ends sooner)")
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(handler=cmd_train)

    ev = sub.add_parser("evaluate", help="evaluate a model on fresh synthetic cases against the exact posterior")
    ev.add_argument("--model", help="artifact directory (default $CRAMPDX_MODEL or model/artifacts/default)")
    ev.add_argument("--n", type=positive_int, default=50_000, help="number of fresh cases (default 50000)")
    ev.add_argument("--seed", type=non_negative_int, help="seed of the fresh cases (default: the training seed + 1000003)")
    ev.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ev.add_argument("--png", default="confusion_matrix.png",
                    help="where to save the confusion matrix (default confusion_matrix.png in the current folder; "
                         "the path written is printed)")
    ev.set_defaults(handler=cmd_evaluate)

    pr = sub.add_parser("predict", help="rank the causes of one case (.json) or many (.csv)")
    pr.add_argument("file", help="one case as JSON (finding -> value), or a CSV/parquet of cases")
    pr.add_argument("--model", help="artifact directory (default $CRAMPDX_MODEL or model/artifacts/default)")
    pr.add_argument("--top", type=positive_int, default=10, help="how many causes to show, 1 or more (default 10)")
    pr.add_argument("--explain", action="store_true", help="explain the top cause finding by finding")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.add_argument("--out", help="write the result to this file (JSON for one case; CSV, parquet or JSON for many)")
    pr.set_defaults(handler=cmd_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 on success)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, or a bad option (argparse has printed one line saying which)
        return exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 2)
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
    except OSError as error:  # a file the user named could not be read or written
        where = f"{error.filename}: " if error.filename else ""
        print(f"crampdx {args.command}: {where}{error.strerror or error}; check the path and its permissions", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
