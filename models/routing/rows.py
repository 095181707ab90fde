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

    def fairness(
        self,
        e0: int,
        t0: int,
        o0: int,
        u0: int,
        band: float,
        target: np.ndarray,
        best_total: float,
    ) -> None:
        """The fairness rows both programs share, over each rep's expected value ``E_r``
        (columns from ``e0``), the team's ``T`` (column ``t0``) and the slacks ``over_r`` /
        ``under_r`` (from ``o0`` / ``u0``): ``T = sum E``; ``E_r - (1 + band) target_r T -
        over_r <= 0``; ``E_r + under_r >= (1 - band) target_r best_total``."""
        n_reps = len(target)
        ar_r = np.arange(n_reps)
        self.add(
            np.zeros(n_reps + 1, dtype=int), np.r_[t0, e0 + ar_r], np.r_[1.0, -np.ones(n_reps)]
        )
        self.close(0.0, 0.0, 1)
        self.add(ar_r, e0 + ar_r, 1.0)
        self.add(ar_r, np.full(n_reps, t0), -(1 + band) * target)
        self.add(ar_r, o0 + ar_r, -1.0)
        self.close(-np.inf, 0.0, n_reps)
        self.add(ar_r, e0 + ar_r, 1.0)
        self.add(ar_r, u0 + ar_r, 1.0)
        self.close((1 - band) * target * best_total, np.inf, n_reps)

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
