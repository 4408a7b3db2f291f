"""Benchmark the synthetic-case generator and the exact posterior.

Targets: 1,000,000 cases generated in at most 5 s (issue 12; 20 s in issue 2); the posterior of
100,000 cases in under 10 s, on a 2-core machine. Prints medians over several runs, and the
generator before issue 12 (``tests/previous_generator.py``) against the current one,
alternately in the same run, as a ratio.

    python bench/bench_synthetic.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import crampdx.synthetic as synthetic  # noqa: E402
from _timing import machine, median_seconds  # noqa: E402
from previous_generator import generate as previous_generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    kb = synthetic.load_knowledge()  # compile once, outside the timings
    print(f"machine: {machine()}; knowledge: {len(kb.classes)} classes, {kb.n_components} mixture components, {len(kb.schema)} findings")

    gen_median, gen_all = median_seconds(lambda: synthetic.generate(1_000_000, seed=7, knowledge=kb), args.repeats)
    print(f"generate 1,000,000 cases: median {gen_median:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in gen_all)}; target <= 5 s)")
    pairs = [(median_seconds(lambda: previous_generate(200_000, seed=7, knowledge=kb), 1)[0],
              median_seconds(lambda: synthetic.generate(200_000, seed=7, knowledge=kb), 1)[0]) for _ in range(args.repeats)]
    ratio = sorted(old / new for old, new in pairs)[len(pairs) // 2]
    print(f"previous / current generator, 200,000 cases, alternately: median ratio {ratio:.1f}x "
          f"(runs: {', '.join(f'{old:.2f} s / {new:.2f} s' for old, new in pairs)})")

    cases = synthetic.generate(100_000, seed=8)
    post_median, post_all = median_seconds(lambda: synthetic.posterior(cases), args.repeats)
    print(f"posterior of 100,000 cases: median {post_median:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in post_all)}; target < 10 s)")

    ok = gen_median <= 5 and post_median < 10
    print("targets met" if ok else "TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
