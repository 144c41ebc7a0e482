"""Sliding-window attempt counters for login, register and reset (per client address and per account).

Written here rather than with quart-rate-limiter because login must count *failed* attempts per
*account* (a key only known after parsing the body, and only after the password check), while
quart-rate-limiter counts every request to a route before it runs. In-process state: with several
worker processes each keeps its own counts (documented in docs/configuration.md).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from identix_stream.errors import RateLimited


class SlidingWindow:
    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def retry_after(self, key: str) -> float:
        """Seconds until one more attempt is allowed (0 when allowed now)."""
        now = self.clock()
        hits = self._prune(key, now)
        if hits is None or len(hits) < self.limit:
            return 0.0
        return hits[len(hits) - self.limit] + self.window_s - now

    def hit(self, key: str) -> None:
        now = self.clock()
        self._prune(key, now)
        self._hits.setdefault(key, deque()).append(now)
        if len(self._hits) > 100_000:  # bound memory under a flood of distinct keys
            for stale in list(self._hits)[:10_000]:
                self._prune(stale, now)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def check(self, key: str, what: str) -> None:
        wait = self.retry_after(key)
        if wait > 0:
            raise RateLimited(f"too many {what}; try again in {math.ceil(wait)} s", retry_after=math.ceil(wait))
