"""The ``crampdx`` command line: the parser, and the one place where errors become sentences.

Every subcommand is a function ``cmd_<name>(args) -> int`` in its own module
(:mod:`~crampdx.cli.data`, :mod:`~crampdx.cli.modelling`, :mod:`~crampdx.cli.predict`). The
parser names each handler as ``module:function`` and imports it only when that subcommand
runs: scikit-learn, shap and pandas take seconds to import, and ``crampdx --help`` or a
mistyped option should answer at once. :func:`main` turns the errors a user can cause into
one clear sentence on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from typing import Callable, Sequence

from crampdx import DISCLAIMER, __version__
from crampdx.errors import UserFacingError
from crampdx.training.defaults import DEFAULT_CASES, DEFAULT_EVALUATION_CASES, DEFAULT_PRIOR_POWER, is_prior_power

__all__ = ["build_parser", "main"]

_MODEL_HELP = "artifact directory (default $CRAMPDX_MODEL or the per-user crampdx model directory)"


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
at_least_a_second = _at_least(1.0, float, meaning="a number of seconds, at least 1")  # below, a worker's 0.1 s ticks look hung
_at_least_two = _at_least(2, meaning="2 or more")
positive_float = _at_least(0.0, float, exclusive=True, meaning="a positive number")
non_negative_float = _at_least(0.0, float, meaning="zero or a positive number")


def _prior_power(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    value = _parse_number(text, float)
    if not is_prior_power(value):
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1 (got {text}); 1 draws the generator's own mix")
    return value


def _port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    value = _parse_number(text, int)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number, 1 to 65535 (got {text})")
    return value


def _command(sub, name: str, handler: str, help: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".", epilog=DISCLAIMER)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (imports nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog="crampdx",
        description="Differential diagnosis of leg cramps: synthetic data, training, evaluation, prediction.",
        epilog=DISCLAIMER,
    )
    parser.add_argument("--version", action="version", version=f"crampdx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = _command(sub, "generate", "crampdx.cli.data:cmd_generate", "generate synthetic cases from the knowledge base")
    gen.add_argument("--n", type=int, default=10_000, help="number of cases (default 10000)")
    gen.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    gen.add_argument("--out", required=True, help="output file, .csv or .parquet")
    gen.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    know = _command(sub, "knowledge", "crampdx.cli.data:cmd_knowledge",
                    "list the etiology classes with prior, ICD-10 code and provenance")
    know.add_argument("--json", action="store_true", help="print one JSON object")

    fi = _command(sub, "findings", "crampdx.cli.data:cmd_findings",
                  "list the findings a case can hold: ids, labels, levels, units and ranges")
    fi.add_argument("--section", help="only this section (history, examination, laboratory, background)")
    fi.add_argument("--json", action="store_true", help="print the finding schema as one JSON object")

    tr = _command(sub, "train", "crampdx.cli.modelling:cmd_train",
                  "generate cases, fit, calibrate, evaluate and save a model")
    tr.add_argument("--cases", type=positive_int, default=DEFAULT_CASES, help=f"synthetic training cases (default {DEFAULT_CASES})")
    tr.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    tr.add_argument("--out", help=_MODEL_HELP)
    tr.add_argument("--data", help="your own labelled cases (.csv or .parquet with an 'etiology' column)")
    tr.add_argument("--mix", action="store_true", help="with --data: add --cases synthetic cases")
    tr.add_argument("--evaluation-cases", type=positive_int, default=DEFAULT_EVALUATION_CASES,
                    help=f"fresh cases for the evaluation stage (default {DEFAULT_EVALUATION_CASES})")
    tr.add_argument("--prior-power", type=_prior_power, default=DEFAULT_PRIOR_POWER,
                    help="draw the synthetic training cases with each (cause, sub-profile) weight raised to this power, so "
                         "that rare causes get more cases (their targets stay the exact posterior, with the knowledge "
                         f"base's priors; 1: the generator's own mix; default {DEFAULT_PRIOR_POWER}; with --data, only "
                         "with --mix)")
    tr.add_argument("--learning-rate", type=positive_float)
    tr.add_argument("--max-depth", type=positive_int)
    tr.add_argument("--max-leaf-nodes", type=_at_least_two)
    tr.add_argument("--min-samples-leaf", type=positive_int)
    tr.add_argument("--l2-regularization", type=non_negative_float)
    tr.add_argument("--max-iter", type=positive_int, help="cap on boosting iterations (early stopping usually ends sooner)")
    tr.add_argument("--quiet", action="store_true")

    ev = _command(sub, "evaluate", "crampdx.cli.modelling:cmd_evaluate",
                  "evaluate a model on fresh synthetic cases against the exact posterior")
    ev.add_argument("--model", help=_MODEL_HELP)
    ev.add_argument("--n", type=positive_int, default=50_000, help="number of fresh cases (default 50000)")
    ev.add_argument("--seed", type=non_negative_int, help="seed of the fresh cases (default: the training seed + 1000003)")
    ev.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ev.add_argument("--png", default="confusion_matrix.png",
                    help="where to save the confusion matrix (default confusion_matrix.png in the current folder; "
                         "the path written is printed)")

    va = _command(sub, "validate", "crampdx.cli.validate:cmd_validate",
                  "rank labelled real cases and report the model and the exact posterior side by side")
    va.add_argument("file", help="labelled cases: .jsonl ({\"id\", \"gold\", \"case\"} per line) or .csv with a gold column")
    va.add_argument("--model", help=_MODEL_HELP)
    va.add_argument("--worst", type=positive_int, default=10, help="how many of the worst-ranked cases to list (default 10)")
    va.add_argument("--json", action="store_true", help="print the figures as one JSON object")

    pr = _command(sub, "predict", "crampdx.cli.predict:cmd_predict", "rank the causes of one case (.json) or many (.csv)")
    pr.add_argument("file", help="one case as JSON (finding -> value), or a CSV/parquet of cases")
    pr.add_argument("--model", help=_MODEL_HELP)
    pr.add_argument("--top", type=positive_int, default=10, help="how many causes to show, 1 or more (default 10)")
    pr.add_argument("--explain", action="store_true", help="explain the top cause finding by finding")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.add_argument("--out", help="write the result to this file (JSON for one case; CSV, parquet or JSON for many)")
    pr.add_argument("--fhir", action="store_true",
                    help="the file is a FHIR R4B Bundle or resource; its Patient, Observations, Conditions and "
                         "medications are read into the case")

    # The service is a front end of its own: the command line only names its entry point.
    se = _command(sub, "serve", "crampdx.service.serve:cmd_serve",
                  "serve assessments over HTTP (JSON API and CDS Hooks) with the verified model")
    se.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)")
    se.add_argument("--port", type=_port, default=8000,
                    help="port (default 8000)")
    se.add_argument("--model", help=_MODEL_HELP)
    se.add_argument("--token-file", help="require 'Authorization: Bearer <token>' with the token in this file")
    se.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                    help="a browser origin allowed to call the service (repeat for more; default none: CORS off)")
    se.add_argument("--workers", type=int, default=1,
                    help="server processes, each with its own copy of the model (default 1; 2 on two idle cores "
                         "serves about twice the requests)")
    se.add_argument("--worker-timeout", type=at_least_a_second, metavar="SECONDS",
                    help="with --workers on Linux: a worker whose event loop has not run for this long (hung) is "
                         "killed and replaced (default 60)")
    se.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def _handler(reference: str) -> Callable[[argparse.Namespace], int]:
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 on success)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, --version, or a bad option (argparse has printed one line saying which)
        return exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 2)
    try:
        return _handler(args.handler)(args)
    except (UserFacingError, ValueError) as error:  # a bad file, case, value, path or model: one sentence
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
