"""Rate limits per API client (fixed one-second windows, by the `limits` library).

The counters live where `QILU_RATE_LIMIT_STORAGE` says: `memory://` (the default) counts in
each server process, so with N workers a client may reach N times its limit; `redis://host:port`
counts once for all processes.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond, storage, strategies

from qilu.errors import QiluError


class RateLimited(QiluError):
    status_code = 429

    def __init__(self, limit: int, retry_after: float):
        super().__init__("rate_limited", f"请求过于频繁：每秒最多 {limit} 次", limit=limit)
        self.retry_after = max(1, math.ceil(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimits:
    def __init__(self, storage_uri: str, default_per_second: int):
        self._limiter = strategies.FixedWindowRateLimiter(storage.storage_from_string(storage_uri))
        self.default_per_second = default_per_second
        self._items: dict[int, RateLimitItemPerSecond] = {}

    def hit(self, key: str, per_second: int | None = None) -> None:
        """Count one request of `key`; `RateLimited` once it is over its limit this second."""
        limit = per_second or self.default_per_second
        item = self._items.get(limit)
        if item is None:
            item = self._items.setdefault(limit, RateLimitItemPerSecond(limit))
        if not self._limiter.hit(item, key):
            reset = self._limiter.get_window_stats(item, key).reset_time
            raise RateLimited(limit, reset - time.time())
