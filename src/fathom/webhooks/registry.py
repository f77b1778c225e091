"""Webhook endpoints of a tenant, managed by its admins.

A URL must pass the same SSRF guard as URL ingestion (:mod:`fathom.ingest.fetch`): http(s)
only, and every address its host resolves to must be public unless the host or network is in
``webhook_url_allow``. It is checked when the endpoint is registered and again at every
delivery attempt (the connection goes to the address just checked), so DNS that changes later
cannot turn a webhook into a probe of the private network.

The secret signs every delivery, so it is kept as given; it is never returned (except once,
when fathom generated it) and never logged.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from fathom import permissions
from fathom.config import Settings
from fathom.domain import Principal
from fathom.errors import FathomError, InvalidQuery, LimitExceeded, NotFound
from fathom.ingest.fetch import check_destination
from fathom.store.database import Store
from fathom.store.outbox import EVENT_TYPES
from fathom.store.webhooks import DeliveryInfo, WebhookInfo, WebhookStore

__all__ = ["MAX_WEBHOOKS_PER_TENANT", "Webhooks"]

MAX_WEBHOOKS_PER_TENANT = 50
_DELIVERY_STATUSES = ("pending", "delivered", "dead")


class Webhooks:
    """Register, list and delete a tenant's endpoints and read their deliveries (admins only)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self.store = WebhookStore(store)

    def create(
        self, who: Principal, url: str, events: Sequence[str], secret: str | None
    ) -> tuple[WebhookInfo, str | None]:
        """Register an endpoint; returns it and the secret when fathom generated one (shown once).

        Raises:
            PermissionDenied: the principal is not an admin of its tenant.
            InvalidQuery: an unknown event, or a URL the SSRF guard refuses (``url.*`` codes).
            LimitExceeded: the tenant has ``MAX_WEBHOOKS_PER_TENANT`` endpoints already.
        """
        _admin_only(who)
        unknown = sorted(set(events) - set(EVENT_TYPES))
        if unknown or not events:
            raise InvalidQuery(
                f"events must be some of {', '.join(EVENT_TYPES)}", code="webhook.invalid_events"
            )
        self.check_url(url)
        if self.store.count(who.tenant) >= MAX_WEBHOOKS_PER_TENANT:
            raise LimitExceeded(
                f"a tenant may have at most {MAX_WEBHOOKS_PER_TENANT} webhooks", code="webhook.too_many"
            )
        generated = None
        if secret is None:
            generated = secret = secrets.token_urlsafe(32)
        info = self.store.create(who.tenant, url, events, secret, who.user)
        return info, generated

    def check_url(self, url: str) -> None:
        """Refuse a URL the SSRF guard would refuse at delivery.

        Raises:
            InvalidQuery: with the guard's ``url.*`` code.
        """
        try:
            check_destination(
                url,
                allow=self._settings.webhook_url_allow,
                timeout_seconds=self._settings.webhook_timeout_seconds,
            )
        except FathomError as exc:
            raise InvalidQuery(exc.message.replace("url_allow", "webhook_url_allow"), code=exc.code) from None

    def endpoints(self, who: Principal) -> list[WebhookInfo]:
        _admin_only(who)
        return self.store.endpoints(who.tenant)

    def get(self, who: Principal, webhook_id: str) -> WebhookInfo:
        _admin_only(who)
        found = self.store.get(who.tenant, webhook_id)
        if found is None:
            raise NotFound(f"no webhook {webhook_id!r}", code="webhook.not_found")
        return found

    def delete(self, who: Principal, webhook_id: str) -> None:
        _admin_only(who)
        if not self.store.delete(who.tenant, webhook_id):
            raise NotFound(f"no webhook {webhook_id!r}", code="webhook.not_found")

    def deliveries(
        self, who: Principal, webhook_id: str, *, status: str | None = None, limit: int = 100
    ) -> list[DeliveryInfo]:
        """An endpoint's deliveries, newest first; ``status="dead"`` lists the dead letters."""
        self.get(who, webhook_id)
        if status is not None and status not in _DELIVERY_STATUSES:
            raise InvalidQuery(
                f"status must be one of {', '.join(_DELIVERY_STATUSES)}", code="webhook.invalid_status"
            )
        return self.store.deliveries(who.tenant, webhook_id, status=status, limit=limit)


def _admin_only(who: Principal) -> None:
    permissions.require_admin(who, "only an admin key may manage webhooks", "webhook.admin_only")
