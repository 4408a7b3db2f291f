"""``crampdx train`` and ``crampdx evaluate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crampdx import DISCLAIMER
from crampdx.cli.errors import UserError
from crampdx.files import check_output_path, write_atomically
from crampdx.model.artifact import default_artifact_dir
from crampdx.model.diagnoser import Diagnoser
from crampdx.render.evaluation import regime_table
from crampdx.training.evaluate import evaluate, evaluation_seed, headline
from crampdx.training.fit import Hyperparameters
from crampdx.training.model_card import plot_confusion_matrix
from crampdx.training.train import train, weak_model_warning

__all__ = ["cmd_evaluate", "cmd_train"]

_HYPERPARAMETERS = ("learning_rate", "max_depth", "max_leaf_nodes", "min_samples_leaf", "l2_regularization", "max_iter")


def cmd_train(args: argparse.Namespace) -> int:
    if args.mix and not args.data:
        raise UserError("--mix adds synthetic cases to --data; give --data too")
    if args.cases < 1000 and not (args.data and not args.mix):
        raise UserError(f"--cases {args.cases}: train on at least 1000 synthetic cases")
    overrides = {name: getattr(args, name) for name in _HYPERPARAMETERS if getattr(args, name) is not None}
    out = Path(args.out) if args.out else default_artifact_dir()
    try:
        manifest = train(out, cases=args.cases, seed=args.seed, hyperparameters=Hyperparameters(**overrides),
                         data=args.data, mix=args.mix, evaluation_cases=args.evaluation_cases, prior_power=args.prior_power,
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    png = Path(args.png)
    if png.suffix.lower() != ".png":
        raise UserError(f"--png {png}: use a file name ending in .png")
    check_output_path(png, "--png", "confusion_matrix.png")  # before the evaluation, not after
    diagnoser = Diagnoser.load(args.model)
    training_seed = diagnoser.manifest_.get("seed")
    seed = evaluation_seed(training_seed) if args.seed is None else args.seed
    if seed == training_seed:
        raise UserError(f"--seed {seed} is the training seed; evaluate on cases the model has not seen")
    figures = evaluate(diagnoser, args.n, seed)
    replaced = png.exists()
    write_atomically(png, lambda tmp: plot_confusion_matrix(figures, Path(tmp)), "--png", "confusion_matrix.png")
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
    print("\nBy regime (the model against the exact posterior):")
    print(regime_table(figures["regimes"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nPer class (precision / recall / cases):")
    for cid, v in figures["model"]["per_class"].items():
        print(f"  {cid:<24} {v['precision']:.3f} / {v['recall']:.3f} / {v['support']}")
    print(f"\n{where}\n{DISCLAIMER}")
    return 0
