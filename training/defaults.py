"""Default sizes of a training run (a module of constants, cheap to import for ``--help``)."""

DEFAULT_CASES = 50_000  # fitted to their exact posteriors: closer to it than 150,000 sampled labels (bench/bench_training.py)
DEFAULT_EVALUATION_CASES = 20_000
# The synthetic training cases are drawn with each (cause, sub-profile) weight raised to this power
# (crampdx.training.drawing): 1 draws the generator's own mix; 0.5-0.7 measured alike (README).
DEFAULT_PRIOR_POWER = 0.6
