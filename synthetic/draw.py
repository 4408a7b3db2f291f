"""Fast draws of one finding's values for many cases, from its compiled table.

The tables of :mod:`crampdx.synthetic.tables` can sample themselves, one finding at a time;
this module draws the same distributions faster for the generator, which fills a million
cases: everything that depends only on the mixture component (cumulative level
probabilities, the truncation bounds of a lab's normal distribution on the CDF scale) is
computed once per component and looked up per case, so a case costs one uniform number,
a few look-ups and, for a numeric finding, one inverse normal CDF. Level findings come out
as small integer codes (``-1`` is free for "not assessed").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from crampdx.synthetic.tables import AgeTable, ConditionalTable, LevelTable, NormalTable

__all__ = ["Sampler", "sampler_for"]


@dataclass(frozen=True, eq=False)
class _LevelSampler:
    thresholds: np.ndarray  # (L - 1, K): cumulative probability of levels 0..l per component

    def draw(self, component: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(len(component))
        codes = np.zeros(len(component), dtype=np.int8)
        for threshold in self.thresholds:  # level = how many cumulative thresholds u passes
            codes += u >= threshold[component]
        return codes


@dataclass(frozen=True, eq=False)
class _NormalSampler:
    """Inverse-CDF draws from the component's normal, truncated to the hard range; in the upper
    tail the mirror image is drawn from the lower one, where the CDF has precision."""

    table: NormalTable
    lower: np.ndarray  # (K,) CDF of the (mirrored) lower bound
    width: np.ndarray  # (K,) CDF mass between the bounds
    sign: np.ndarray  # (K,) -1 where mirrored

    def draw(self, component: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.lower[component] + rng.random(len(component)) * self.width[component]
        z = ndtri(np.clip(p, 1e-300, 1 - 1e-16))
        t = self.table.loc[component] + self.table.scale[component] * self.sign[component] * z
        x = np.exp(t) if self.table.log_space else t
        return np.clip(x, self.table.low, self.table.high)


@dataclass(frozen=True, eq=False)
class _AgeSampler:
    table: AgeTable

    def draw(self, component: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        band = self.table.band[component]
        low, width = self.table.edges[band], np.diff(self.table.edges)[band]
        return np.floor(low + rng.random(len(component)) * width)


@dataclass(frozen=True, eq=False)
class _ConditionalSampler:
    """A child finding: the variant of its parent's level where one is declared, else the default."""

    parent: str
    default: "Sampler"
    variants: tuple["Sampler | None", ...]

    def draw_given(self, component: np.ndarray, parent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        values = self.default.draw(component, rng)
        for code, variant in enumerate(self.variants):
            rows = np.flatnonzero(parent == code)
            if variant is not None and len(rows):
                values[rows] = variant.draw(component[rows], rng)
        return values


Sampler = _LevelSampler | _NormalSampler | _AgeSampler | _ConditionalSampler


def _level(table: LevelTable) -> _LevelSampler:
    return _LevelSampler(np.ascontiguousarray(np.cumsum(table.probs, axis=1)[:, :-1].T))


def _normal(table: NormalTable) -> _NormalSampler:
    t = np.log if table.log_space else (lambda x: x)
    za, zb = (t(table.low) - table.loc) / table.scale, (t(table.high) - table.loc) / table.scale
    flip = za > 0
    lower, upper = ndtr(np.where(flip, -zb, za)), ndtr(np.where(flip, -za, zb))
    return _NormalSampler(table, lower, upper - lower, np.where(flip, -1.0, 1.0))


def _plain(table) -> Sampler:
    return _SAMPLERS[type(table)](table)


def _conditional(table: ConditionalTable) -> _ConditionalSampler:
    variants = tuple(None if v is None else _plain(v) for v in table.variants)
    return _ConditionalSampler(table.parent, _plain(table.default), variants)


_SAMPLERS = {LevelTable: _level, NormalTable: _normal, AgeTable: _AgeSampler, ConditionalTable: _conditional}


def sampler_for(table) -> Sampler:
    """The fast sampler of one compiled table (level, normal, age or conditional).

    Examples
    --------
    >>> import numpy as np
    >>> sampler = sampler_for(LevelTable(np.array([[1.0, 0.0], [0.0, 1.0]])))
    >>> sampler.draw(np.array([0, 1, 1]), np.random.default_rng(0)).tolist()
    [0, 1, 1]
    """
    return _SAMPLERS[type(table)](table)
