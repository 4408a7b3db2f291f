"""``crampdx validate``: the model and the exact posterior on labelled real cases."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crampdx import DISCLAIMER
from crampdx.model.diagnoser import Diagnoser
from crampdx.render.validation import validation_text
from crampdx.training.external import read_labelled_file, validate_on

__all__ = ["cmd_validate"]


def cmd_validate(args: argparse.Namespace) -> int:
    diagnoser = Diagnoser.load(args.model)
    cases = read_labelled_file(Path(args.file), diagnoser.knowledge_.class_ids)
    figures = validate_on(diagnoser, cases, worst=args.worst)
    if args.json:
        print(json.dumps({"file": str(args.file), **figures, "disclaimer": DISCLAIMER}, indent=2))
        return 0
    print(validation_text(figures, str(args.file)))
    print(f"\n{DISCLAIMER}")
    return 0
