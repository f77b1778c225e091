"""The answer cache: exact and semantic, scoped so that nobody sees an answer they could not get.

The scope (tenant first) is
built by the caller. Entries are keyed by tenant, the caller's ACL view, the metadata filters, the model
and the prompt version. A question matches an entry exactly (same normalised text)
or semantically (embedding cosine at or above the threshold). An entry remembers
the version of every document its citations came from (content hash and ACL) and is
dropped when any of them changed or disappeared. On every hit, each cited document is
also checked against the asking principal as it is now: an answer quoting a document the
principal may not read is never returned, whatever the scope says.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from fathom.domain import Answer, Principal, Usage

__all__ = ["AnswerCache", "CacheScope", "DocumentVersion", "VersionOf"]

CacheScope = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DocumentVersion:
    """What a cached answer depends on in one cited document: its content and who may read it."""

    content_hash: str
    acl_users: tuple[str, ...]
    acl_groups: tuple[str, ...]


# Called with a tenant and a document id; None when the document is gone.
VersionOf = Callable[[str, str], DocumentVersion | None]


@dataclass(frozen=True, slots=True)
class _Entry:
    question: str
    vector: np.ndarray
    answer: Answer
    versions: dict[str, DocumentVersion]


def _normalized(question: str) -> str:
    return " ".join(question.lower().split()).rstrip("?!. ")


class AnswerCache:
    """A bounded LRU of verified answers (see the module docstring)."""

    def __init__(self, size: int, similarity: float, version_of: VersionOf) -> None:
        self._size = size
        self._similarity = similarity
        self._version_of = version_of
        self._entries: OrderedDict[tuple[CacheScope, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, scope: CacheScope, question: str, vector: np.ndarray, *, reader: Principal
    ) -> Answer | None:
        """A still-valid cached answer to this or a near-identical question, or None.

        Valid means: every cited document still has the content and the ACL it had when the
        answer was cached, and ``reader`` may read every one of them now.
        """
        if self._size == 0:
            return None
        key = (scope, _normalized(question))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                best, best_sim = None, self._similarity
                for (entry_scope, _q), candidate in self._entries.items():
                    if entry_scope != scope:
                        continue
                    sim = float(np.dot(candidate.vector, vector))
                    if sim >= best_sim:
                        best, best_sim = candidate, sim
                entry = best
            if entry is None:
                return None
            entry_key = (scope, entry.question)
            tenant = scope[0]
            for doc_id, version in entry.versions.items():
                if self._version_of(tenant, doc_id) != version:
                    del self._entries[entry_key]
                    return None
                if not reader.can_read(tenant, version.acl_users, version.acl_groups):
                    return None
            self._entries.move_to_end(entry_key)
            # Served from the cache, the answer spent no tokens this time.
            return replace(entry.answer, cached=True, usage=Usage())

    def put(self, scope: CacheScope, question: str, vector: np.ndarray, answer: Answer) -> None:
        """Remember a verified answer with the versions (content and ACL) of the documents it cites."""
        if self._size == 0:
            return
        versions: dict[str, DocumentVersion] = {}
        for citation in answer.citations:
            version = self._version_of(scope[0], citation.doc_id)
            if version is None:
                return
            versions[citation.doc_id] = version
        key = (scope, _normalized(question))
        with self._lock:
            self._entries[key] = _Entry(key[1], np.asarray(vector, dtype=np.float32), answer, versions)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, tenant: str, doc_id: str) -> int:
        """Drop every entry of ``tenant`` that cites ``doc_id`` now (a delete), not at its next
        lookup, so the deleted text is not kept in memory; returns how many."""
        with self._lock:
            gone = [
                key
                for key, entry in self._entries.items()
                if key[0][0] == tenant and doc_id in entry.versions
            ]
            for key in gone:
                del self._entries[key]
        return len(gone)
