"""How usual a case is: its log-evidence among generated cases with the same findings assessed.

:func:`evidence_percentile` — where log p(x_S) of a case falls among generated cases with the
*same* set S of assessed findings (log-evidence falls as findings are added, so only like can
be compared with like). Both sides are weighed as if every cause were equally common, so a
textbook case of a rare cause is typical, not atypical.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd

import crampdx.synthetic.compiled_evidence as compiled_evidence
from crampdx.synthetic.generate import generate
from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.lumping import balanced_log_sum, class_log_evidence, log_sum_exp

__all__ = ["EvidencePercentile", "TIE_TOLERANCE", "compile_atypical_check", "evidence_percentile", "reference_cases"]

# Log-evidences this close (relative, at least 1 nat) are the same combination of findings
# computed along different paths (a mixture sum in another order); they tie.
TIE_TOLERANCE = 1e-9


@lru_cache(maxsize=4)
def reference_cases(kb: KnowledgeBase, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """About ``n`` fully assessed generated cases, the same number from every class (masked
    per query to the case's assessed set), and their weights (all equal).

    Drawing every class equally, rather than weighing prior-distributed cases by 1 / (K
    prior), makes every case count: 1,000 balanced cases hold as much information as 4,000
    weighted ones (whose rare classes carried large weights) at a quarter of the cost of
    each atypical check. Rows are the first ``n // K`` cases of each class in a pool drawn
    from ``seed`` (extended with spawned seeds until the rarest class has enough), taken a
    class at a time in turn, so that every prefix of ``m K`` rows holds ``m`` of each class.
    """
    per_class = max(1, n // len(kb.classes))
    rarest = min(c.prior for c in kb.classes)
    pool_size = int(np.ceil(1.5 * per_class / rarest))
    frames, ranks, counts = [], [], np.zeros(len(kb.classes), dtype=int)
    for chunk_seed in np.random.SeedSequence(seed).spawn(64):
        frame = generate(pool_size, seed=int(chunk_seed.generate_state(1)[0]), knowledge=kb, complete=True)
        labels = frame["etiology"].cat.codes.to_numpy()
        rank_in_class = np.zeros(len(labels), dtype=int)
        for k in range(len(kb.classes)):
            members = np.flatnonzero(labels == k)
            rank_in_class[members] = counts[k] + np.arange(len(members))
        keep = rank_in_class < per_class
        frames.append(frame[keep])
        ranks.append(rank_in_class[keep] * len(kb.classes) + labels[keep])
        counts += np.bincount(labels[keep], minlength=len(kb.classes))
        if counts.min() >= per_class:
            break
    else:  # pragma: no cover - a class with a prior this small is refused by the knowledge base
        raise RuntimeError("the reference cases could not cover every class")
    codes = kb.schema.encode(pd.concat(frames, ignore_index=True))[np.argsort(np.concatenate(ranks))]
    weights = np.ones(len(codes))
    codes.flags.writeable = weights.flags.writeable = False  # cached and shared: callers copy
    return codes, weights


def compile_atypical_check(kb: KnowledgeBase) -> None:
    """Compile the check's loop (:mod:`~crampdx.synthetic.compiled_evidence`) and lay ``kb``'s
    tables out for it now, so that every check after it in this process takes the loop: for a
    server's warm-up. numba compiles a loop at its first call: ~0.4 s with its disk cache,
    ~4 s the first time on a machine. Until then the check runs in numpy, with the same
    answers: a short command-line run does not pay numba's start."""
    compiled_evidence.EVIDENCE_KERNEL.get()
    class_log_evidence(np.full((1, len(kb.schema)), np.nan), kb, [])  # nothing assessed: the loop's first call


class EvidencePercentile(NamedTuple):
    """Where a case's log-evidence falls among comparable generated cases (see
    :func:`evidence_percentile`)."""

    percentile: float
    log_evidence: float
    reference_cases: int  # how many comparable generated cases it was measured against


def evidence_percentile(codes_row: np.ndarray, kb: KnowledgeBase, *, ranges: Mapping[str, tuple[float, float]] | None = None,
                        n_reference: int = 1000, seed: int = 20_011, settle_at: float | None = None) -> EvidencePercentile:
    """Where a case's log-evidence falls among generated cases with the same assessed findings.

    A finding known only as a range is compared like with like: each reference case gives
    that finding as the cell of the same partition (below, within or above the range) its
    value falls in, so probabilities are compared with probabilities, not with densities.
    References are scored with :func:`~crampdx.synthetic.lumping.class_log_evidence`
    (exact: the mixture components the case's assessed findings cannot tell apart lumped, or
    with the age known each case against its age band's components only), each block in one
    batch with the case, so a reference with the case's very findings ties with it; the
    case's own log-evidence comes from the first block.

    With ``settle_at`` the references are scored a block at a time (2, 4, 8 and 16 times the
    number of classes, then all, every block holding each class equally), stopping
    as soon as enough of them fall below the case that the percentile over all ``n_reference``
    cannot be below ``settle_at`` (a sequential Monte Carlo test, Besag & Clifford 1991):
    whether a case is below ``settle_at`` is decided exactly as with every reference, at a
    fraction of the cost for the usual case, whose percentile is then measured on fewer
    references (``reference_cases``).

    Returns
    -------
    EvidencePercentile
        ``percentile``: the mid-rank of the case's class-balanced log-evidence, log (1/K)
        sum_c p(x_S | c), among the reference cases (the same number from every class)
        restricted to the same set of assessed findings: the fraction below it plus half the
        fraction equal to it (so a case with nothing assessed sits at 0.5, not at 0); equal
        means within :data:`TIE_TOLERANCE` (relative), so rounding never splits a tie.
        Balancing the classes keeps a typical case of a rare cause from reading as atypical.
        ``log_evidence``: the case's log p(x_S). ``reference_cases``: how many references
        were scored.
    """
    row = np.asarray(codes_row, dtype=float).reshape(1, -1)
    ranges = dict(ranges or {})
    reference, weight = reference_cases(kb, n_reference, seed)
    known = ~np.isnan(row[0])
    known[[kb.schema.position(fid) for fid in ranges]] = True
    assessed = [kb.schema.ids[i] for i in np.flatnonzero(known)]
    n_classes = len(kb.classes)
    log_prior = kb.log_prior
    ends = [len(reference)] if settle_at is None else sorted({min(len(reference), k * n_classes) for k in (2, 4, 8, 16)} | {len(reference)})
    below = tied = counted = 0.0
    start = 0
    case_evidence = None
    for end in ends:
        block = reference[start:end]
        batch = np.vstack([row, block])
        batch[1:, np.isnan(row[0])] = np.nan
        intervals = {0: ranges}
        for fid, bounds in ranges.items():
            cells = _partition_cells(block[:, kb.schema.position(fid)], bounds, kb.schema[fid].hard)
            for i, cell in enumerate(cells, start=1):
                intervals.setdefault(i, {})[fid] = cell
        by_class = class_log_evidence(batch, kb, assessed, intervals)
        if case_evidence is None:  # log p(x_S) = log sum_c prior_c p(x_S | c)
            case_evidence = float(log_sum_exp(by_class[0] + log_prior))
            if not np.isfinite(case_evidence):
                return EvidencePercentile(0.0, float("-inf"), 0)
        balanced = balanced_log_sum(by_class)
        case_balanced = balanced[0]  # this block's own: the case and its references along one code path
        tolerance = TIE_TOLERANCE * max(1.0, abs(case_balanced))  # equal findings, equal up to rounding
        block_weight = weight[start:end]
        below += block_weight[balanced[1:] < case_balanced - tolerance].sum()
        tied += block_weight[np.abs(balanced[1:] - case_balanced) <= tolerance].sum()
        counted += block_weight.sum()
        start = end
        if settle_at is not None and below + tied / 2 >= settle_at * weight.sum():
            break
    return EvidencePercentile(float((below + tied / 2) / counted), case_evidence, int(start))


def _partition_cells(values: np.ndarray, bounds: tuple[float, float], hard: tuple[float, float]) -> list[tuple[float, float]]:
    """For each value, the cell of {below, within, above} ``bounds`` (within ``hard``) it falls in."""
    low, high = bounds
    cuts = sorted({hard[0], low, high, hard[1]})
    cells = list(zip(cuts[:-1], cuts[1:]))
    index = np.clip(np.searchsorted(cuts, values, side="right") - 1, 0, len(cells) - 1)
    return [cells[i] for i in index]
