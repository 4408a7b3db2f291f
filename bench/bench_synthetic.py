"""Benchmark the synthetic-case generator and the exact posterior.

Targets (issue 2): 1,000,000 cases generated in under 20 s; the posterior of 100,000 cases in
under 10 s, on a 2-core machine. Prints medians over several runs.

    python bench/bench_synthetic.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import crampdx.synthetic as synthetic  # noqa: E402
from _timing import machine, median_seconds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    kb = synthetic.load_knowledge()  # compile once, outside the timings
    print(f"machine: {machine()}; knowledge: {len(kb.classes)} classes, {kb.n_components} mixture components, {len(kb.schema)} findings")

    gen_median, gen_all = median_seconds(lambda: synthetic.generate(1_000_000, seed=7), args.repeats)
    print(f"generate 1,000,000 cases: median {gen_median:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in gen_all)}; target < 20 s)")

    cases = synthetic.generate(100_000, seed=8)
    post_median, post_all = median_seconds(lambda: synthetic.posterior(cases), args.repeats)
    print(f"posterior of 100,000 cases: median {post_median:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in post_all)}; target < 10 s)")

    ok = gen_median < 20 and post_median < 10
    print("targets met" if ok else "TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
