"""What both retrievers share: hits from an embedded fathom or from a server, and their metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fathom.domain import Hit, Principal
from fathom.errors import ConfigError
from fathom.remote import RemoteClient

if TYPE_CHECKING:
    from fathom.api import Fathom

__all__ = ["HitSource", "hit_metadata"]


class HitSource:
    """Searches one fathom: embedded (a :class:`~fathom.Fathom`) or remote (``url`` + ``api_key``).

    Raises:
        ConfigError: neither or both of ``fathom`` and ``url`` given, or a bad ``url``.
    """

    def __init__(
        self,
        fathom: Fathom | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        principal: Principal | None = None,
    ) -> None:
        if (fathom is None) == (url is None):
            raise ConfigError(
                "give either a Fathom object or the url of a fathom server", code="config.invalid"
            )
        if url is not None and principal is not None:
            raise ConfigError(
                "a server decides the principal from the API key; principal is for an embedded Fathom",
                code="config.invalid",
            )
        self._fathom = fathom
        self._remote = RemoteClient(url, api_key) if url is not None else None
        self._principal = principal

    def search(self, query: str, *, k: int, filters: Mapping[str, str] | None = None) -> list[Hit]:
        """The best ``k`` chunks the principal (or the key's) may read, best first."""
        if self._remote is not None:
            return [_hit(data) for data in self._remote.search(query, k=k, filters=filters)]
        assert self._fathom is not None
        return self._fathom.search(query, k=k, filters=filters, principal=self._principal)


def _hit(data: Mapping[str, Any]) -> Hit:
    return Hit(
        doc_id=str(data["doc_id"]),
        chunk_id=int(data["chunk_id"]),
        source=str(data["source"]),
        title=str(data["title"]),
        score=float(data["score"]),
        text=str(data["text"]),
        start=int(data["start"]),
        end=int(data["end"]),
        heading_path=tuple(str(h) for h in data.get("heading_path") or ()),
        page=int(data["page"]) if data.get("page") is not None else None,
    )


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """A hit's metadata as both frameworks carry it (JSON types only)."""
    return {
        "doc_id": hit.doc_id,
        "chunk_id": hit.chunk_id,
        "source": hit.source,
        "title": hit.title,
        "page": hit.page,
        "heading_path": list(hit.heading_path),
        "score": hit.score,
        "start": hit.start,
        "end": hit.end,
    }
