"""Benchmark the command line's batch work (issue 12, item 4).

* ``crampdx --help`` and an argument error: wall time of a fresh process (target <= 0.3 s);
* ``crampdx generate --n N --out cases.csv``: wall time of a fresh process (target <= 15 s
  for 1,000,000), the write part of the progress;
* ``crampdx predict cases.csv --out ranked.csv`` on 100,000 rows: rows/s end to end (fresh
  process, model loading included; target >= 10,000 rows/s), and in one run the split by
  stage (read, validate, rank, write), timed in-process with the same functions the
  command uses, so that the stage that bounds the rate is named;
* the ranking's scores by scikit-learn and by the compiled batches (``model/batch_forest.py``)
  alternately on the same 50,000 rows: rows/s of each, their ratio, and whether the floats
  are the same.

Medians over several runs; the default model (``~/.local/share/crampdx/models/default`` or
``$CRAMPDX_MODEL``) is used as it is.

    python bench/bench_cli.py [--repeats 3] [--generate 1000000] [--predict 100000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _timing import machine, median_seconds  # noqa: E402


def _run(*argv: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "crampdx.cli.main", *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 2):
        raise SystemExit(f"crampdx {' '.join(argv)} failed: {done.stderr[-2000:]}")
    return seconds


def _stages(cases: Path, ranked: Path) -> dict[str, float]:
    """Seconds per stage of `crampdx predict` for one file, in-process."""
    from crampdx.cli.tables import write_frames_atomically
    from crampdx.contract.casechunks import read_case_chunks, resolve_case_chunk
    from crampdx.model.diagnoser import Diagnoser
    from crampdx.render.batch import ranked_table

    seconds = dict.fromkeys(["load model", "read", "validate", "rank", "write"], 0.0)
    start = time.perf_counter()
    diagnoser = Diagnoser.load()
    seconds["load model"] = time.perf_counter() - start
    outputs, first_row = [], 1
    start = time.perf_counter()
    for frame in read_case_chunks(cases, diagnoser.schema):
        seconds["read"] += time.perf_counter() - start
        start = time.perf_counter()
        table = resolve_case_chunk(frame, diagnoser.schema, first_row, keep_other=True)
        seconds["validate"] += time.perf_counter() - start
        start = time.perf_counter()
        proba = diagnoser.predict_proba_codes(table.codes, table.ranges)
        outputs.append(ranked_table(proba, diagnoser.class_ids_, 10, label=table.label, other=table.other,
                                    first_row=first_row))
        seconds["rank"] += time.perf_counter() - start
        first_row += len(frame)
        start = time.perf_counter()
    start = time.perf_counter()
    write_frames_atomically(outputs, ranked)
    seconds["write"] = time.perf_counter() - start
    return seconds


def _ranking_side_by_side(cases: Path, repeats: int) -> str:
    """The ranking's scores by scikit-learn and by the compiled batches, alternately on the same
    cases (one chunk of the file), with a check that they are the same floats."""
    import numpy as np

    from crampdx.contract.casechunks import read_case_chunks, resolve_case_chunk
    from crampdx.model.diagnoser import Diagnoser

    diagnoser = Diagnoser.load()
    codes = resolve_case_chunk(next(iter(read_case_chunks(cases, diagnoser.schema))), diagnoser.schema, 1, keep_other=False).codes
    heaps = diagnoser.batch_forest_
    heaps.decision_function(codes[:10])  # numba's start, once per process, outside the timing
    timings = {"scikit-learn": [], "compiled": []}
    for _ in range(repeats):
        start = time.perf_counter()
        theirs = diagnoser.estimator_.decision_function(np.asfortranarray(codes))
        timings["scikit-learn"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ours = heaps.decision_function(codes)
        timings["compiled"].append(time.perf_counter() - start)
    same = "the same floats" if np.array_equal(ours, theirs) else f"DIFFERENT scores (max {np.abs(ours - theirs).max():.3g})"
    rates = {name: len(codes) / statistics.median(runs) for name, runs in timings.items()}
    return (f"ranking {len(codes):,} rows, alternately: scikit-learn {rates['scikit-learn']:,.0f} rows/s, compiled batches "
            f"{rates['compiled']:,.0f} rows/s ({rates['compiled'] / rates['scikit-learn']:.1f}x), {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--generate", type=int, default=1_000_000, help="cases for `crampdx generate`")
    parser.add_argument("--predict", type=int, default=100_000, help="rows for `crampdx predict`")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="bench_cli_"))

    help_median, _ = median_seconds(lambda: _run("--help"), args.repeats)
    error_median, _ = median_seconds(lambda: _run("generate", "--n", "x", "--out", "x.csv"), args.repeats)
    print(f"crampdx --help: median {help_median:.2f} s; an argument error: median {error_median:.2f} s (target <= 0.3 s)")

    out = work / "cases.csv"
    gen_median, gen_all = median_seconds(lambda: _run("generate", "--n", str(args.generate), "--out", str(out), "--quiet"),
                                         args.repeats)
    print(f"crampdx generate --n {args.generate:,} --out cases.csv: median {gen_median:.1f} s "
          f"(runs: {', '.join(f'{t:.1f}' for t in gen_all)}; target <= 15 s for 1,000,000)")

    cases = work / "predict.csv"
    _run("generate", "--n", str(args.predict), "--seed", "3", "--out", str(cases), "--quiet")
    ranked = work / "ranked.csv"
    pred_median, pred_all = median_seconds(lambda: _run("predict", str(cases), "--out", str(ranked)), args.repeats)
    print(f"crampdx predict ({args.predict:,} rows) --out ranked.csv: median {pred_median:.1f} s, "
          f"{args.predict / pred_median:,.0f} rows/s end to end (runs: {', '.join(f'{t:.1f}' for t in pred_all)}; "
          "target >= 10,000 rows/s)")

    runs = [_stages(cases, ranked) for _ in range(args.repeats)]
    split = {stage: statistics.median(run[stage] for run in runs) for stage in runs[0]}
    work_total = sum(v for k, v in split.items() if k != "load model")
    print("predict by stage (in-process, medians): " + "; ".join(
        f"{stage} {seconds:.2f} s" + ("" if stage == "load model" else f" ({args.predict / seconds:,.0f} rows/s, "
                                                                       f"{seconds / work_total:.0%})")
        for stage, seconds in split.items()))
    print(_ranking_side_by_side(cases, args.repeats))


if __name__ == "__main__":
    main()
