"""Webhooks: signed, durable, at-least-once event deliveries to a tenant's endpoints.

:mod:`fathom.webhooks.registry` manages endpoints (admins only, URLs behind the SSRF guard);
:mod:`fathom.webhooks.delivery` sends the outbox that :mod:`fathom.store.outbox` fills.
"""

from fathom.webhooks.delivery import DeliveryWorkers, sign
from fathom.webhooks.registry import Webhooks

__all__ = ["DeliveryWorkers", "Webhooks", "sign"]
