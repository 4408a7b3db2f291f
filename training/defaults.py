"""Default sizes of a training run (a module of constants, cheap to import for ``--help``)."""

DEFAULT_CASES = 150_000  # the default run stays within the README's time target on 2 cores (bench/bench_training.py)
DEFAULT_EVALUATION_CASES = 20_000
