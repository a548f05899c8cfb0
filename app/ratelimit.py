"""Rate limits per viewer (the seeds' tables), moving windows in memory or in Redis."""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from models.errors import RateLimited

log = logging.getLogger(__name__)


def storage_for(url: str) -> Storage:
    """`memory://` limits each process on its own; `redis://` shares the window between them."""
    if url.startswith(("redis://", "rediss://")):
        return RedisStorage(f"async+{url}", implementation="redispy")
    return MemoryStorage()


class RateLimits:
    def __init__(self, url: str, policy: dict[str, str]) -> None:
        self.policy: dict[str, RateLimitItem] = {name: parse(rule) for name, rule in policy.items()}
        self.limiter = MovingWindowRateLimiter(storage_for(url))

    async def hit(self, bucket: str, key: str) -> None:
        """Count one request of `key` in `bucket`; RATE_LIMITED once the window is full."""
        item = self.policy.get(bucket)
        if item is None:
            return
        try:
            allowed = await self.limiter.hit(item, bucket, key)
            if allowed:
                return
            stats = await self.limiter.get_window_stats(item, bucket, key)
        except Exception:
            # a limiter outage must not take the API down with it: let the request through
            log.warning("rate limit storage unavailable; not limiting", exc_info=True)
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Rate limit of {item} exceeded for {bucket}; retry in {retry_after} s",
            retryAfter=retry_after,
            limit=str(item),
        )
