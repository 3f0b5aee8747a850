"""Requests and tokens per minute, for the one user of this workspace.

A sliding window of the last 60 seconds: a request is admitted while fewer than
``requests_per_minute`` were admitted and fewer than ``tokens_per_minute`` tokens were used in
that window; otherwise the answer is 429 with ``Retry-After``, the seconds until enough of the
window has passed. Tokens are known only once the provider has answered, so a request that
starts under the token limit may end above it; the next one waits.

Counted per workspace pod (the gateway runs in it): a user with two named servers has two
budgets. A limit across pods needs shared state (docs/llm-gateway.md says what it would take).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from .config import Limits

WINDOW = 60.0


class Window:
    """Amounts recorded with their time; the sum over the last ``WINDOW`` seconds."""

    def __init__(self) -> None:
        self._events: deque[tuple[float, int]] = deque()
        self._total = 0

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - WINDOW:
            self._total -= self._events.popleft()[1]

    def used(self, now: float) -> int:
        self._expire(now)
        return self._total

    def add(self, now: float, amount: int) -> None:
        if amount > 0:
            self._events.append((now, amount))
            self._total += amount

    def wait_below(self, now: float, limit: int) -> float:
        """Seconds until the window's sum is below ``limit``."""
        self._expire(now)
        total = self._total
        for at, amount in self._events:
            total -= amount
            if total < limit:
                return max(0.0, at + WINDOW - now)
        return 0.0


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.requests = Window()
        self.tokens = Window()

    def admit(self, limits: Limits) -> int | None:
        """Record one request and return None, or return the seconds to wait (Retry-After)."""
        now = self.clock()
        waits = []
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        if rpm and self.requests.used(now) >= rpm:
            waits.append(self.requests.wait_below(now, rpm))
        if tpm and self.tokens.used(now) >= tpm:
            waits.append(self.tokens.wait_below(now, tpm))
        if waits:
            return max(1, math.ceil(max(waits)))
        self.requests.add(now, 1)
        return None

    def spent(self, tokens: int) -> None:
        self.tokens.add(self.clock(), tokens)
