"""Loops compiled with numba, once per process and only when first needed.

numba (installed with shap) takes ~0.3 s to import, and a loop's first call compiles it or loads
it from numba's on-disk cache (a few tenths of a second; seconds the first time on a machine):
a short command-line run or the dashboard's first page should not pay that for a loop it never
runs. :class:`LazyKernel` imports numba and makes the loop's dispatcher on the first
:meth:`~LazyKernel.get` (concurrent first callers wait for one) and says whether that has
happened, so callers can keep their plain numpy path until a long batch or a server's warm-up
(which also calls the loop once, to compile it) has paid for the start.
"""

from __future__ import annotations

import threading
from typing import Callable

__all__ = ["LazyKernel"]


class LazyKernel:
    """``function`` made a ``numba.njit(nogil=True)`` dispatcher on first use (numba compiles it
    at its first call), with the functions it calls (``helpers``, defined in the same module)
    made dispatchers first and put in their place in the module's namespace, where the compiled
    ``function`` finds them. ``cache=False`` compiles in every process: for a loop whose module's
    doctests run it (pytest imports those modules under another name, and numba's on-disk cache,
    shared by both names, would then point one of them at a module it cannot import).

    Examples
    --------
    >>> def twice(x):
    ...     return 2 * x
    >>> kernel = LazyKernel(twice)
    >>> kernel.started
    False
    >>> kernel.get()(21), kernel.started
    (42, True)
    """

    def __init__(self, function: Callable, helpers: tuple[Callable, ...] = (), *, cache: bool = True) -> None:
        self.function, self.helpers, self.cache = function, helpers, cache
        self._compiled: list = []
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        """Whether the loop's dispatcher exists in this process."""
        return bool(self._compiled)

    def get(self) -> Callable:
        """The loop's dispatcher, made on the first call."""
        with self._lock:
            if not self._compiled:
                self._compiled.append(self._dispatcher())
            return self._compiled[0]

    def warm(self, *args) -> None:
        """Make the dispatcher and compile it for ``args`` (by calling it with them) before
        :attr:`started` turns true, so that callers choosing their path by ``started`` keep
        theirs while numba compiles (a server's warm-up, answering requests meanwhile).

        Examples
        --------
        >>> def add_one(a):
        ...     a += 1
        >>> kernel = LazyKernel(add_one, cache=False)
        >>> import numpy as np
        >>> values = np.zeros(2)
        >>> kernel.warm(values)
        >>> kernel.started, values.tolist()
        (True, [1.0, 1.0])
        """
        with self._lock:
            dispatcher = self._compiled[0] if self._compiled else self._dispatcher()
            dispatcher(*args)
            if not self._compiled:
                self._compiled.append(dispatcher)

    def _dispatcher(self) -> Callable:
        import numba  # deferred: see the module docstring (not a cycle)

        try:  # compiled once and, unless cache=False, kept on disk (__pycache__ or ~/.cache/numba)
            return self._compile(numba, cache=self.cache)
        except RuntimeError:  # no writable cache location (a read-only install, no home): compile each time
            return self._compile(numba, cache=False)

    def _compile(self, numba, cache: bool) -> Callable:
        for helper in self.helpers:
            self.function.__globals__[helper.__name__] = numba.njit(nogil=True, cache=cache)(helper)
        return numba.njit(nogil=True, cache=cache)(self.function)

    def reset(self) -> None:
        """Forget the compiled loop, as in a new process (for tests)."""
        with self._lock:
            self._compiled.clear()
