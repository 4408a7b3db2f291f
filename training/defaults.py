"""Defaults of a training run and the prior power's range (import-free, cheap to import for ``--help``)."""

DEFAULT_CASES = 50_000  # fitted to their exact posteriors: closer to it than 150,000 sampled labels (bench/bench_training.py)
DEFAULT_EVALUATION_CASES = 20_000
# The synthetic training cases are drawn with each (cause, sub-profile) weight raised to this power
# (crampdx.training.drawing): 1 draws the generator's own mix; 0.5-0.7 measured alike (README).
DEFAULT_PRIOR_POWER = 0.6


def is_prior_power(value: float) -> bool:
    """Whether ``value`` can be a prior power: above 0 and at most 1 (NaN cannot).

    Examples
    --------
    >>> is_prior_power(0.6), is_prior_power(1.0), is_prior_power(0.0), is_prior_power(float("nan"))
    (True, True, False, False)
    """
    return 0.0 < value <= 1.0
