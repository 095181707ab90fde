"""Counter-based randomness of the daily step: hashes of (key, day, stream) to uniforms.

Every draw of the daily step hashes (a unit's 64-bit key, the day number, a stream salt).
A unit's path depends on its own key only, so the oracle's paths for one entity row never
move when other rows (or their activities) change.
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_LOW_32 = np.uint64(0xFFFFFFFF)
STREAM_CLOSE = np.uint64(0x243F6A8885A308D3)  # per unit and day: the close draw
STREAM_COUNT = np.uint64(0xB7E151628AED2A6B)  # per unit and day: the activity count
STREAM_CLOSE_AT = np.uint64(0x13198A2E03707345)  # the second of a close
STREAM_ACTIVITY = np.uint64(0xA4093822299F31D1)  # per activity: its second and its type
STREAM_NTH = np.uint64(0x082EFA98EC4E6C89)  # times the activity's index within the day
STREAM_BURST = np.uint64(0x452821E638D01377)  # per lead and day: burst start and length
STREAM_CAMPAIGN = np.uint64(0xBE5466CF34E90C6C)  # per day: campaign start and target
STREAM_PATH = np.uint64(0xC0AC29B7C97C50DD)  # oracle: one key per (row, path)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer, in place on a uint64 array (wrapping arithmetic)."""
    x ^= x >> np.uint64(30)
    x *= _MIX_1
    x ^= x >> np.uint64(27)
    x *= _MIX_2
    x ^= x >> np.uint64(31)
    return x


def hash_bits(key: np.ndarray, day: np.ndarray | int, salt: np.ndarray | np.uint64) -> np.ndarray:
    """64 random bits per element of ``key``: a hash of (key, day, salt)."""
    x = np.empty(len(key), dtype=np.uint64)
    x[...] = day
    x *= GOLDEN
    x += key
    x += salt
    return mix64(x)


def uniform(key: np.ndarray, day: np.ndarray | int, salt: np.uint64) -> np.ndarray:
    """One uniform on [0, 1) (53-bit resolution) per element of ``key``."""
    x = hash_bits(key, day, salt)
    x >>= np.uint64(11)
    u = x.astype(np.float64)
    u *= 2.0**-53
    return u


def uniforms(
    key: np.ndarray, day: np.ndarray | int, salt: np.ndarray | np.uint64
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniforms on [0, 1) (32-bit resolution) per element of ``key``."""
    x = hash_bits(key, day, salt)
    high = (x >> np.uint64(32)).astype(np.float64) * 2.0**-32
    low = (x & _LOW_32).astype(np.float64) * 2.0**-32
    return high, low


def poisson(u: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Poisson counts by inverting the CDF at the uniforms ``u`` (rates capped at 500)."""
    rate = np.minimum(rate, 500.0)
    prob = np.exp(-rate)
    cdf = prob.copy()
    count = (u >= cdf).astype(np.int64)
    prob *= rate
    cdf += prob
    above = u >= cdf
    count += above
    idx = np.flatnonzero(above)
    k = 1
    while idx.size:
        k += 1
        count[idx] = k
        step = prob[idx] * rate[idx] / k
        prob[idx] = step
        cdf[idx] += step
        idx = idx[u[idx] >= cdf[idx]]
    return count
