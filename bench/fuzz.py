"""Fuzz the case contract and the Diagnoser with seeded random cases.

Each case maps findings of the shipped schema (by id or label, now and then a misspelt or
absurdly long name) to values, valid or not: numbers in and beyond the plausible range,
decimal commas, results in words and bounds, integers beyond the float range, NaN and
infinity, booleans, level ids and labels, unknown levels, lists, objects, long text. Every
case must end in one of two ways:

- **accepted**: ``validate_case`` returns a Case; its batch probabilities are finite and sum
  to 1 (within 1e-9); for a subset, ``Diagnoser.rank`` is sorted, sums to 1 and equals the
  batch path (``predict_proba_codes``) within 1e-9, and the SHAP explanation of the top
  cause adds up (base + contributions + not assessed = score within 1e-6; score and
  probability equal the ranking's);
- **refused**: a ``UserFacingError`` (``CaseError``) whose message is one line.

Anything else is a crash; a failed check is a wrong result. Both must be 0.
``tests/test_fuzz.py`` runs 10,000 cases against the tiny test model in CI; this script
runs the full run against the default model:

    python bench/fuzz.py [--cases 100000] [--seed 20261203] [--model DIR] [--explain-every 5]
"""

from __future__ import annotations

import argparse
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from crampdx.contract import Case, Schema, validate_case
from crampdx.errors import UserFacingError, clip
from crampdx.model.diagnoser import Diagnoser

SEED = 20261203
MESSAGE_CHARS = 20_000  # a refusal's message: one line, never an echo of a huge value
CHUNK = 2_000  # accepted cases scored together by the batch path


@dataclass
class FuzzReport:
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    ranked: int = 0
    explained: int = 0
    crashes: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.cases:,} cases: {self.accepted:,} accepted, {self.refused:,} refused with a sentence, "
                f"{len(self.crashes):,} crashes, {len(self.wrong):,} wrong results; {self.ranked:,} rankings and "
                f"{self.explained:,} explanations checked against the batch path and additivity; {self.seconds:.1f} s")


# ----------------------------------------------------------------------------- drawing cases

_YES_NO = (True, False, "yes", "no", "present", "absent", 1, 0, "Y", "positive")
_NOT_ASSESSED = [None, "", "n/a", "not assessed", float("nan"), "?"]
_ADVERSARIAL = [10 ** 400, -(10 ** 400), 10 ** 5000, float("inf"), float("-inf"), True, [2.9], {"value": 1},
                "x" * 2_000, "9" * 5_000, "12,000", "1e400", "<", ">abc", "low-ish", "∞", "", "\x00", "١٢", 1j]


def _valid_value(rng: np.random.Generator, finding) -> Any:
    if finding.is_numeric:
        low, high = finding.hard
        number = float(rng.uniform(low, high))
        u = rng.random()
        if u < 0.05 and finding.qualitative:  # known only in words or as a bound: scored over 32 draws, so kept rare
            words = list(finding.qualitative)
            return words[rng.integers(len(words))] if u < 0.03 else f"<{number:.2f}"
        return (number, round(number, finding.decimals), f"{number:.2f}".replace(".", ","), f"{number:.3f}")[rng.integers(4)]
    if finding.kind == "binary":
        return _YES_NO[rng.integers(len(_YES_NO))]
    level = finding.levels[rng.integers(len(finding.levels))]
    return (level.id, level.label, level.label.upper())[rng.integers(3)]


def _invalid_value(rng: np.random.Generator, finding) -> Any:
    if finding.is_numeric and rng.random() < 0.4:  # just outside the plausible range
        low, high = finding.hard
        return float([low - 1 - rng.exponential(high - low), high + 1 + rng.exponential(high - low)][rng.integers(2)])
    if not finding.is_numeric and rng.random() < 0.3:
        return ["maybe", "unknown level", "2", 7, 0.5, "yes please"][rng.integers(6)]
    return _ADVERSARIAL[rng.integers(len(_ADVERSARIAL))]


def _name(rng: np.random.Generator, finding) -> Any:
    u = rng.random()
    if u < 0.6:
        return finding.id
    if u < 0.99:
        return [finding.label, finding.label.lower(), f" {finding.label.upper()} "][rng.integers(3)]
    if u < 0.997:
        return finding.id[:-1] + "x"  # a misspelling: an unknown finding, maybe with a suggestion
    return ["k" * 95_000, "", 12, "potassium\n"][rng.integers(4)]


def draw_case(rng: np.random.Generator, schema: Schema) -> dict:
    """One random case: 1-25 findings, each invalid with a probability drawn per case."""
    k = int(rng.integers(1, 26))
    findings = [schema.findings[i] for i in rng.choice(len(schema), size=k, replace=False)]
    p_invalid = [0.0, 0.0, 0.0, 0.01, 0.05, 0.2][rng.integers(6)]
    case = {}
    for finding in findings:
        u = rng.random()
        value = (_invalid_value(rng, finding) if u < p_invalid else
                 _NOT_ASSESSED[rng.integers(len(_NOT_ASSESSED))] if u < p_invalid + 0.05 else _valid_value(rng, finding))
        case[_name(rng, finding)] = value
    return case


# ----------------------------------------------------------------------------- checking

def _validated(mapping: dict, schema: Schema, report: FuzzReport, index: int) -> Case | None:
    try:
        case = validate_case(mapping, schema=schema)
    except UserFacingError as error:
        message = str(error)
        if "\n" in message or len(message) > MESSAGE_CHARS or not isinstance(error, ValueError):
            report.wrong.append(f"case {index}: refusal is not one short line ({len(message):,} characters)")
        report.refused += 1
        return None
    except Exception as error:  # the very thing the fuzz looks for
        report.crashes.append(f"case {index}: {type(error).__name__}: {clip(str(error))} "
                              f"at {traceback.extract_tb(error.__traceback__)[-1].name}")
        return None
    report.accepted += 1
    if validate_case(case.to_dict(), schema=schema).values != case.values:  # what was accepted reads back the same
        report.wrong.append(f"case {index}: validating the accepted case again changes it")
    return case


def _check_batch(diagnoser: Diagnoser, cases: list[tuple[int, Case]], report: FuzzReport, rank_every: int, explain_every: int) -> None:
    codes = np.vstack([case.codes() for _, case in cases])
    ranges = {row: case.intervals for row, (_, case) in enumerate(cases) if case.intervals}
    proba = diagnoser.predict_proba_codes(codes, ranges)
    bad = ~np.isfinite(proba).all(axis=1) | (np.abs(proba.sum(axis=1) - 1) > 1e-9) | (proba < 0).any(axis=1)
    report.wrong += [f"case {cases[row][0]}: batch probabilities not finite or not summing to 1" for row in np.flatnonzero(bad)]
    classes = list(diagnoser.class_ids_)
    for row, (index, case) in enumerate(cases):
        if index % rank_every:
            continue
        causes = diagnoser.rank(case)
        report.ranked += 1
        p = np.array([c.probability for c in causes])
        batch = proba[row, [classes.index(c.id) for c in causes]]
        if not (np.isfinite(p).all() and abs(p.sum() - 1) <= 1e-9 and (np.diff(p) <= 0).all()
                and np.abs(p - batch).max() <= 1e-9):
            report.wrong.append(f"case {index}: ranking unsorted, not summing to 1 or unlike the batch path")
        if index % explain_every:
            continue
        top = causes[0]
        explanation = diagnoser.explain(case, top.id)
        report.explained += 1
        if not (abs(explanation.total - explanation.value) <= 1e-6 and abs(explanation.value - top.score) <= 1e-9
                and abs(explanation.probability - top.probability) <= 1e-12):
            report.wrong.append(f"case {index}: the explanation of {top.id} does not add up "
                                f"({explanation.total:.9f} vs {explanation.value:.9f})")


def fuzz(diagnoser: Diagnoser, n: int, seed: int = SEED, *, rank_every: int = 10, explain_every: int = 50) -> FuzzReport:
    """Draw ``n`` cases from ``SeedSequence(seed)`` (case ``i`` from its own child sequence,
    so any case can be drawn again alone) and check each one; see the module docstring.
    Cases whose index is a multiple of ``rank_every`` are also ranked alone, those whose
    index is a multiple of ``explain_every`` (and of ``rank_every``) also explained."""
    schema = diagnoser.schema
    report = FuzzReport(cases=n)
    start = time.perf_counter()
    accepted: list[tuple[int, Case]] = []
    # one thread: scikit-learn's OpenMP threads cost more than they give on a shared 2-core machine
    with threadpool_limits(limits=1):
        for index, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
            case = _validated(draw_case(np.random.default_rng(child), schema), schema, report, index)
            if case is not None:
                accepted.append((index, case))
            if len(accepted) == CHUNK or (index == n - 1 and accepted):
                _check_batch(diagnoser, accepted, report, rank_every, explain_every)
                accepted = []
    report.seconds = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--model", help="artifact directory (default: $CRAMPDX_MODEL or the default model)")
    parser.add_argument("--rank-every", type=int, default=1, help="rank every n-th case alone and compare (default 1)")
    parser.add_argument("--explain-every", type=int, default=5, help="explain every n-th ranked case (default 5)")
    args = parser.parse_args(argv)
    diagnoser = Diagnoser.load(args.model)
    print(f"model: {diagnoser.path_}; seed {args.seed}")
    report = fuzz(diagnoser, args.cases, args.seed, rank_every=args.rank_every, explain_every=args.explain_every)
    print(report.summary())
    for line in (report.crashes + report.wrong)[:20]:
        print("  " + line)
    return 0 if not report.crashes and not report.wrong else 1


if __name__ == "__main__":
    raise SystemExit(main())
