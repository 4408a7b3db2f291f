"""Default sizes of a training run (a module of constants, cheap to import for ``--help``)."""

DEFAULT_CASES = 60_000  # soft targets: 60,000 cases teach what 150,000 sampled labels did (bench/bench_training.py)
DEFAULT_EVALUATION_CASES = 20_000
