"""Compiled per-component distributions of one finding.

The knowledge base compiles to a finite mixture: each *component* is one (etiology class,
sub-profile, age band, sex), and given its component every finding is drawn independently
(apart from declared parent → child dependencies). A table holds one finding's
distribution in every component and offers the two operations the engine needs:

* ``sample(component, rng)`` — draw values for cases whose components are given;
* ``design(values)`` and ``log_weights()`` — a feature matrix of the observed values and a
  weight matrix such that ``design(x) @ log_weights()`` is ``log p(x | component)`` for every
  case and component at once (0 where not assessed). That turns the exact posterior into a
  matrix product.

Numbers that are impossible (probability 0) are carried as ``NEG`` rather than ``-inf`` so
that ``0 * NEG`` stays 0 inside the matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri

NEG = -1e30  # log(0) stand-in; anything below NEG / 2 is treated as impossible
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def _log_normal_mass(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """log(Φ(zb) − Φ(za)) for za <= zb, accurate in both tails (upper tails are mirrored)."""
    flip = za > 0
    low, high = np.where(flip, -zb, za), np.where(flip, -za, zb)
    log_high, log_low = log_ndtr(high), log_ndtr(low)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(log_low < log_high, log_high + np.log1p(-np.exp(log_low - log_high)), -np.inf)


def _kept(log_weights):
    """``log_weights`` computed once per table and kept, read-only: a table is frozen, and the
    exact inference scores the same tables again and again (every atypical check)."""

    def kept(self) -> np.ndarray:
        weights = self.__dict__.get("_log_weights")
        if weights is None:
            weights = log_weights(self)
            weights.flags.writeable = False
            object.__setattr__(self, "_log_weights", weights)  # a frozen dataclass: past its __setattr__
        return weights

    kept.__doc__, kept.__name__ = log_weights.__doc__, log_weights.__name__
    return kept


def _with_weights(taken, table, components: np.ndarray):
    """``taken`` (``table`` restricted to ``components``) with the columns of ``table``'s kept
    log-weights, rather than computing them again for every restriction."""
    weights = table.log_weights()[:, components]
    weights.flags.writeable = False
    object.__setattr__(taken, "_log_weights", weights)  # a frozen dataclass: past its __setattr__
    return taken


def safe_log(p: np.ndarray) -> np.ndarray:
    """Natural log with exact zeros mapped to ``NEG``."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, NEG)
    np.log(p, out=out, where=p > 0)
    return out


@dataclass(frozen=True, eq=False)
class LevelTable:
    """A binary or categorical finding: ``probs[k, level]`` per component."""

    probs: np.ndarray  # (K, L), rows sum to 1

    @property
    def n_features(self) -> int:
        return self.probs.shape[1]

    def sample(self, component: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cumulative = np.cumsum(self.probs, axis=1)[component]
        u = rng.random(len(component))
        codes = (u[:, None] >= cumulative[:, :-1]).sum(axis=1)
        return codes.astype(float)

    def design(self, values: np.ndarray) -> np.ndarray:
        observed = ~np.isnan(values)
        onehot = np.zeros((len(values), self.n_features))
        rows = np.flatnonzero(observed)
        onehot[rows, values[observed].astype(np.int64)] = 1.0
        return onehot

    @_kept
    def log_weights(self) -> np.ndarray:
        return safe_log(self.probs).T

    def take(self, components: np.ndarray) -> "LevelTable":
        """The table of ``components`` only (in that order)."""
        return _with_weights(LevelTable(self.probs[components]), self, components)


@dataclass(frozen=True, eq=False)
class NormalTable:
    """A numeric finding: a normal (or log-normal) distribution per component, truncated
    to the finding's hard plausible range, so that every sampled value is possible and the
    density used by the posterior is exact.

    ``loc``/``scale`` live in t-space: t = x for ``normal``, t = log x for ``lognormal``.
    """

    loc: np.ndarray  # (K,)
    scale: np.ndarray  # (K,)
    low: float  # hard range, in x-space
    high: float
    log_space: bool
    center: float  # t-space centring constant, improves the conditioning of t**2

    n_features = 3

    def _t(self, x):
        return np.log(x) if self.log_space else x

    def sample(self, component: np.ndarray, rng: np.random.Generator, low: float | None = None,
               high: float | None = None) -> np.ndarray:
        """Values for cases of the given components, within the hard range (and within
        ``low``–``high`` when given: a result known only as a range)."""
        low = self.low if low is None else max(low, self.low)
        high = self.high if high is None else min(high, self.high)
        loc, scale = self.loc[component], self.scale[component]
        za, zb = (self._t(low) - loc) / scale, (self._t(high) - loc) / scale
        flip = za > 0  # in the upper tail draw the mirror image from the lower one, where the CDF has precision
        lo, hi = ndtr(np.where(flip, -zb, za)), ndtr(np.where(flip, -za, zb))
        z = ndtri(np.clip(lo + rng.random(len(component)) * (hi - lo), 1e-300, 1 - 1e-16))
        t = loc + scale * np.where(flip, -z, z)
        x = np.exp(t) if self.log_space else t
        return np.clip(x, low, high)

    def log_mass(self, low: float, high: float) -> np.ndarray:
        """log p(low <= x <= high | component) for every component, shape (K,): a result known
        only as a range, the truncation to the hard range included. Computed from log-CDFs, so
        a range far in a tail keeps its (tiny) probability instead of rounding to zero."""
        z = lambda x: (self._t(x) - self.loc) / self.scale  # noqa: E731
        inside = _log_normal_mass(z(max(low, self.low)), z(min(high, self.high)))
        return np.maximum(inside - self._log_truncation_mass(), NEG)

    def take(self, components: np.ndarray) -> "NormalTable":
        """The table of ``components`` only (in that order)."""
        taken = NormalTable(self.loc[components], self.scale[components], self.low, self.high, self.log_space, self.center)
        return _with_weights(taken, self, components)

    def design(self, values: np.ndarray) -> np.ndarray:
        observed = ~np.isnan(values)
        z = np.where(observed, self._t(np.where(observed, values, 1.0)) - self.center, 0.0)
        return np.column_stack([z * z, z, observed.astype(float)])

    def _log_truncation_mass(self) -> np.ndarray:
        """log p(hard low <= x <= hard high) of the untruncated distribution, per component."""
        z = lambda x: (self._t(x) - self.loc) / self.scale  # noqa: E731
        return _log_normal_mass(z(self.low), z(self.high))

    @_kept
    def log_weights(self) -> np.ndarray:
        log_mass = self._log_truncation_mass()
        m = self.loc - self.center
        precision = 1.0 / self.scale**2
        quadratic = -0.5 * precision
        linear = m * precision
        constant = -0.5 * m * m * precision - np.log(self.scale) - _LOG_SQRT_2PI - log_mass
        if self.log_space:  # density of x = e^t carries the Jacobian 1/x = e^(-t)
            linear = linear - 1.0
            constant = constant - self.center
        return np.vstack([quadratic, linear, constant])


@dataclass(frozen=True, eq=False)
class AgeTable:
    """Age: each component belongs to one age band; age is uniform over the band's whole years."""

    edges: np.ndarray  # (B + 1,) band edges in years; band b is [edges[b], edges[b+1])
    band: np.ndarray  # (K,) band of each component

    @property
    def n_features(self) -> int:
        return len(self.edges) - 1

    def band_of(self, age: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, age, side="right") - 1

    def sample(self, component: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        band = self.band[component]
        low, width = self.edges[band], np.diff(self.edges)[band]
        return np.floor(low + rng.random(len(component)) * width)

    def design(self, values: np.ndarray) -> np.ndarray:
        observed = ~np.isnan(values)
        onehot = np.zeros((len(values), self.n_features))
        rows = np.flatnonzero(observed)
        onehot[rows, self.band_of(values[observed])] = 1.0
        return onehot

    def take(self, components: np.ndarray) -> "AgeTable":
        """The table of ``components`` only (in that order)."""
        return _with_weights(AgeTable(self.edges, self.band[components]), self, components)

    @_kept
    def log_weights(self) -> np.ndarray:
        bands = np.arange(self.n_features)
        same = bands[:, None] == self.band[None, :]
        return np.where(same, -np.log(np.diff(self.edges))[:, None], NEG)


@dataclass(frozen=True, eq=False)
class ConditionalTable:
    """A child finding whose distribution is replaced, whatever the class, when its parent
    takes certain levels (``variants[parent_code]``; ``None`` keeps ``default``)."""

    parent: str
    default: LevelTable | NormalTable
    variants: tuple[LevelTable | NormalTable | None, ...]

    @property
    def n_features(self) -> int:
        return self.default.n_features

    def take(self, components: np.ndarray) -> "ConditionalTable":
        """The table of ``components`` only (in that order)."""
        return ConditionalTable(self.parent, self.default.take(components),
                                tuple(None if v is None else v.take(components) for v in self.variants))

    def given(self, parent_code: int):
        return self.variants[parent_code] or self.default

    def sample_given(self, component: np.ndarray, parent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        values = self.default.sample(component, rng)
        for code, variant in enumerate(self.variants):
            rows = parent == code
            if variant is not None and rows.any():
                values[rows] = variant.sample(component[rows], rng)
        return values

    def design(self, values: np.ndarray) -> np.ndarray:
        return self.default.design(values)
