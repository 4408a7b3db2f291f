"""External-validation figures (``crampdx validate``) as text and as Markdown."""

from __future__ import annotations

from typing import Mapping

__all__ = ["validation_markdown", "validation_text"]

_ROWS = (("top-1", "top1"), ("top-3", "top3"), ("top-5", "top5"))


def _with_ci(figure: Mapping) -> str:
    low, high = figure["ci95"]
    return f"{figure['value']:.1%} ({low:.1%}–{high:.1%})"


def _summary_rows(figures: Mapping) -> list[tuple[str, str, str]]:
    model, exact = figures["model"], figures["posterior"]
    rows = [(name, _with_ci(model[key]), _with_ci(exact[key])) for name, key in _ROWS]
    rows.append(("mean reciprocal rank", f"{model['mean_reciprocal_rank']:.3f}", f"{exact['mean_reciprocal_rank']:.3f}"))
    rows.append(("mean probability of the gold class", f"{model['gold_probability_mean']:.3f}",
                 f"{exact['gold_probability_mean']:.3f}"))
    return rows


def validation_markdown(figures: Mapping, *, title: str = "") -> str:
    """The headline figures as a Markdown table (model card, README).

    Examples
    --------
    >>> f = {"value": 0.5, "ci95": [0.3, 0.7]}
    >>> side = {"top1": f, "top3": f, "top5": f, "mean_reciprocal_rank": 0.6, "gold_probability_mean": 0.4}
    >>> print(validation_markdown({"n": 10, "model": side, "posterior": side}).splitlines()[2])
    | top-1 | 50.0% (30.0%–70.0%) | 50.0% (30.0%–70.0%) |
    """
    heading = title or f"{figures['n']} real cases"
    lines = [f"| {heading} | model | exact posterior |", "|---|---|---|"]
    lines += [f"| {name} | {model} | {exact} |" for name, model, exact in _summary_rows(figures)]
    return "\n".join(lines)


def validation_text(figures: Mapping, source: str) -> str:
    """The whole report for a terminal: headline figures with 95 % Wilson intervals, per
    class, and the cases the model ranks worst."""
    lines = [f"External validation on {figures['n']} labelled cases from {source} "
             f"(median {figures['findings_median']:.0f} findings entered)", ""]
    width = max(len(name) for name, _, _ in _summary_rows(figures))
    lines.append(f"  {'':<{width}}  {'model':<24}  exact posterior")
    lines += [f"  {name:<{width}}  {model:<24}  {exact}" for name, model, exact in _summary_rows(figures)]
    lines += ["", "Per class (cases; top-1 and top-3, model / exact posterior):"]
    for cid, f in figures["per_class"].items():
        lines.append(f"  {cid:<24} {f['n']:>3}   {f['top1_model']:.0%} / {f['top1_posterior']:.0%}   "
                     f"{f['top3_model']:.0%} / {f['top3_posterior']:.0%}")
    lines += ["", "Ranked worst by the model (rank model / posterior, probability of the gold class, model's top cause):"]
    lines += [f"  {w['id']:<10} {w['gold']:<24} {w['rank_model']:>2} / {w['rank_posterior']:<2}  "
              f"{w['gold_probability_model']:.3f}  {w['top_model']}" for w in figures["worst"]]
    lines += ["", "95 % Wilson intervals; a small set of cases gives wide intervals and per-class figures are anecdotes."]
    return "\n".join(lines)
