"""A sparse constraint matrix built block by block, for the routing programs
(``solver.py``'s MILP and ``aggregate.py``'s LP share it)."""

from __future__ import annotations

import numpy as np
from scipy import sparse


class ConstraintRows:
    """Rows of ``low <= A x <= high`` written one block at a time.

    ``add(r, c, x)`` puts coefficients ``x`` at columns ``c`` of the current block's rows
    ``r`` (numbered from 0 within the block); ``close(low, high, count)`` ends the block of
    ``count`` rows with their bounds. ``matrix(n_vars)`` and ``low`` / ``high`` give
    ``A`` and the bounds once every block is closed.
    """

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lows: list[np.ndarray] = []
        self.highs: list[np.ndarray] = []
        self.at = 0

    def add(self, r: np.ndarray, c: np.ndarray, x: np.ndarray | float) -> None:
        """Coefficients ``x`` at (block row ``r``, column ``c``)."""
        self.rows.append(self.at + np.asarray(r))
        self.cols.append(np.asarray(c))
        self.vals.append(np.broadcast_to(np.asarray(x, dtype=float), np.shape(c)))

    def close(self, low: np.ndarray | float, high: np.ndarray | float, count: int) -> None:
        """End the current block: its ``count`` rows lie within [low, high]."""
        self.lows.append(np.broadcast_to(np.asarray(low, dtype=float), (count,)))
        self.highs.append(np.broadcast_to(np.asarray(high, dtype=float), (count,)))
        self.at += count

    def matrix(self, n_vars: int) -> sparse.csr_array:
        """``A``: one row per closed row, ``n_vars`` columns."""
        data = (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols)))
        return sparse.csr_array(data, shape=(self.at, n_vars))

    @property
    def low(self) -> np.ndarray:
        return np.concatenate(self.lows)

    @property
    def high(self) -> np.ndarray:
        return np.concatenate(self.highs)
