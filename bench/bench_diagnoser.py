"""Benchmark the Diagnoser on the default model.

Targets (issue 4): rank + explain of one case p95 <= 50 ms; next_best_findings <= 250 ms;
batch ranking of 10,000 cases <= 5 s. Uses the model at $CRAMPDX_MODEL or
the default model directory, training the default one first if there is none.

    python bench/bench_diagnoser.py [--cases 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import crampdx.synthetic as synthetic  # noqa: E402
from _timing import machine, median_seconds  # noqa: E402
from crampdx.model.artifact import ArtifactError, default_artifact_dir  # noqa: E402
from crampdx.model.diagnoser import Diagnoser  # noqa: E402
from crampdx.compiled import LazyKernel  # noqa: E402
from crampdx.synthetic import compiled_evidence  # noqa: E402
from crampdx.synthetic.typicality import compile_atypical_check  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402


def load_or_train() -> Diagnoser:
    try:
        return Diagnoser.load()
    except ArtifactError:
        from crampdx.training.train import train

        print(f"no usable model at {default_artifact_dir()}: training the default one first")
        train(default_artifact_dir(), report=lambda line: None)
        return Diagnoser.load()


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def atypical_paths(diagnoser: Diagnoser, cases) -> tuple[list[float], list[float]]:
    """CPU seconds of each case's atypical check on the numpy path and in the compiled loop,
    alternately (which goes first alternates too), one BLAS thread as in the service."""
    compile_atypical_check(diagnoser.knowledge_)
    started = compiled_evidence.EVIDENCE_KERNEL
    paths = {"numpy": LazyKernel(started.function), "compiled": started}  # an unstarted kernel: the numpy path
    seconds: dict[str, list[float]] = {"numpy": [], "compiled": []}
    with threadpool_limits(1):
        for i, case in enumerate(cases):
            for name in (("numpy", "compiled") if i % 2 else ("compiled", "numpy")):
                compiled_evidence.EVIDENCE_KERNEL = paths[name]
                start = time.process_time()
                diagnoser.atypical(case)
                seconds[name].append(time.process_time() - start)
    compiled_evidence.EVIDENCE_KERNEL = started
    return seconds["numpy"], seconds["compiled"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    diagnoser = load_or_train()
    frame = synthetic.generate(args.cases, seed=123).drop(columns=synthetic.LABEL)
    cases = [diagnoser.case(row.dropna().to_dict()) for _, row in frame.iterrows()]

    start = time.perf_counter()
    diagnoser.explain(cases[0], diagnoser.class_ids_[0])
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    # every cause's explainer, as the service's warm-up builds them
    diagnoser.assess(cases[0], explain=len(diagnoser.class_ids_), atypical=False)
    every_cause = time.perf_counter() - start
    diagnoser.atypical(cases[0])  # the atypical check's references, once per process

    rank_explain, next_best, atypical = [], [], []
    for case in cases:
        start = time.perf_counter()
        top = diagnoser.rank(case)[0]
        diagnoser.explain(case, top.id)
        rank_explain.append(time.perf_counter() - start)
    for case in cases[:50]:
        start = time.perf_counter()
        diagnoser.next_best_findings(case, k=5)
        next_best.append(time.perf_counter() - start)
        start = time.perf_counter()
        diagnoser.atypical(case)
        atypical.append(time.perf_counter() - start)

    # One case scored by the compiled forest vs. scikit-learn's tree-by-tree predict, same run.
    compiled, sklearn_path = [], []
    for case in cases[:50]:
        codes = case.codes()
        start = time.perf_counter()
        diagnoser.forest_.decision_function(codes)
        compiled.append(time.perf_counter() - start)
        start = time.perf_counter()
        diagnoser.estimator_.decision_function(codes)
        sklearn_path.append(time.perf_counter() - start)

    atypical_numpy, atypical_compiled = atypical_paths(diagnoser, cases)

    batch = synthetic.generate(10_000, seed=124)
    batch_median, _ = median_seconds(lambda: diagnoser.predict_proba(batch), 5)

    figures = {
        "rank + explain, p95 (ms)": (1000 * percentile(rank_explain, 95), 50),
        "next_best_findings, median (ms)": (1000 * statistics.median(next_best), 250),
        "next_best_findings, p95 (ms)": (1000 * percentile(next_best, 95), 250),
        "batch ranking of 10,000 cases, median of 5 (s)": (batch_median, 5),
    }
    print(f"first explain (builds the explained cause's SHAP explainer, once per process): {warmup:.2f} s; "
          f"then the other causes' explainers: {every_cause:.2f} s")
    print(f"rank + explain, median: {1000 * statistics.median(rank_explain):.1f} ms over {len(cases)} cases")
    print(f"atypical, median: {1000 * statistics.median(atypical):.1f} ms")
    print("atypical, CPU per case, numpy path (command line, dashboard) vs compiled loop (the service), alternately: "
          f"median {1000 * statistics.median(atypical_numpy):.2f} vs {1000 * statistics.median(atypical_compiled):.2f} ms, "
          f"mean {1000 * statistics.mean(atypical_numpy):.2f} vs {1000 * statistics.mean(atypical_compiled):.2f} ms")
    fast, slow = statistics.median(compiled), statistics.median(sklearn_path)
    print(f"scoring one case, median: compiled forest {1000 * fast:.2f} ms, scikit-learn decision_function "
          f"{1000 * slow:.1f} ms ({slow / fast:.0f}x)")
    ok = True
    for name, (value, target) in figures.items():
        print(f"{name}: {value:.1f} (target <= {target})")
        ok &= value <= target
    print("targets met" if ok else "TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
