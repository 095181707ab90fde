"""`python -m bench.phases --leads N`: the nightly bench with its last phase run apart.

``make bench`` overlaps pass 2 (reasons, facts, next steps: ``pipelines.passes``) with
the publish (the store's writes and the CSV: ``pipelines.batch.publish_spilled``). Here
pass 2 runs to its end first, then the publish runs on its finished partitions, and
each is timed alone; against ``then_publish_wall_s`` of an overlapped run, the two
figures tell how much the overlap wins and which side bounds it. Prints one line
``{"pass2_alone_s", "publish_alone_s"}`` after the bench's own output (whose total and
ratio then count the two phases one after the other).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import Any

import bench.run as bench


def main(argv: list[str] | None = None) -> None:
    """Run ``bench.run`` with its publish preceded by the whole of pass 2."""
    phases: dict[str, float] = {}
    publish = bench.publish_spilled

    def apart(arriving: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        parts = list(arriving)  # pass 2, every partition
        middle = time.perf_counter()
        published = publish(parts, *args, **kwargs)
        phases["pass2_alone_s"] = round(middle - start, 2)
        phases["publish_alone_s"] = round(time.perf_counter() - middle, 2)
        return published

    bench.publish_spilled = apart
    try:
        bench.main(argv)
    finally:
        bench.publish_spilled = publish
    print(json.dumps(phases))


if __name__ == "__main__":
    main(sys.argv[1:])
