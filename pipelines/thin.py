"""The Prefect task every flow uses: neither caches nor persists its result.

Task inputs are large frames that are cheap to recompute and costly to hash.
"""

from __future__ import annotations

from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE

thin_task = partial(task, cache_policy=NO_CACHE, persist_result=False)
