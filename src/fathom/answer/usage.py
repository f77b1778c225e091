"""Token accounting: cost per answer from a price table, and per-tenant daily token budgets.

Budgets are kept in process memory (per :class:`fathom.Fathom` instance) and reset
at midnight UTC; a multi-process deployment needs a shared counter.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping

from fathom.domain import Usage
from fathom.llm.base import TokenUsage

__all__ = ["TokenLedger", "price"]


def price(usage: TokenUsage, model: str, prices: Mapping[str, tuple[float, float]]) -> Usage:
    """``usage`` with its cost in USD when the price table lists ``model`` (per million tokens)."""
    rates = prices.get(model)
    cost = None
    if rates is not None:
        cost = round((usage.prompt_tokens * rates[0] + usage.completion_tokens * rates[1]) / 1_000_000, 8)
    return Usage(usage.prompt_tokens, usage.completion_tokens, cost)


class TokenLedger:
    """Tokens used per tenant per UTC day, checked against the configured budgets."""

    def __init__(self, budgets: Mapping[str, int]) -> None:
        self._budgets = dict(budgets)
        self._used: dict[tuple[str, dt.date], int] = {}
        self._lock = threading.Lock()

    def _budget(self, tenant: str) -> int | None:
        return self._budgets.get(tenant, self._budgets.get("*"))

    def used(self, tenant: str) -> int:
        """Tokens ``tenant`` used today."""
        with self._lock:
            return self._used.get((tenant, dt.datetime.now(dt.UTC).date()), 0)

    def allows(self, tenant: str) -> bool:
        """Whether ``tenant`` has budget left today."""
        budget = self._budget(tenant)
        return budget is None or self.used(tenant) < budget

    def record(self, tenant: str, usage: Usage) -> None:
        key = (tenant, dt.datetime.now(dt.UTC).date())
        with self._lock:
            self._used[key] = self._used.get(key, 0) + usage.total_tokens
