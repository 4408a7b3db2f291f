"""Default sizes of a training run (a module of constants, cheap to import for ``--help``)."""

DEFAULT_CASES = 40_000  # fitted to their exact posteriors: closer to it than 150,000 sampled labels (bench/bench_training.py)
DEFAULT_EVALUATION_CASES = 20_000
