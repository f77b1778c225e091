"""One access rule everywhere: ``Principal.can_read``, the index filter, the backends and the
store's re-check of chunk reads all give the same answer for every principal and document."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fathom import Fathom
from fathom.domain import Principal
from fathom.index.backend import SearchRequest
from fathom.index.vocabulary import document_acl_tokens, filter_for, matches
from fathom.store.database import ChunkDraft

_NAMES = st.sampled_from(["alice", "bob", "eng", "sales", "", "u:alice", "g:eng", "*", "a b"])
_TENANTS = st.sampled_from(["acme", "globex"])


@st.composite
def _principals(draw: st.DrawFn) -> Principal:
    return Principal(
        tenant=draw(_TENANTS),
        user=draw(st.none() | _NAMES),
        groups=tuple(draw(st.lists(_NAMES, max_size=3))),
        admin=draw(st.booleans()),
    )


@given(
    principal=_principals(),
    tenant=_TENANTS,
    users=st.lists(_NAMES, max_size=3),
    groups=st.lists(_NAMES, max_size=3),
)
def test_can_read_and_the_index_filter_agree(principal, tenant, users, groups):
    tokens = document_acl_tokens(users, groups)
    assert principal.can_read(tenant, users, groups) == matches(filter_for(principal), tenant, tokens)


PRINCIPALS = [
    Principal(tenant="acme", admin=True),
    Principal(tenant="acme", user="alice", groups=("eng",)),
    Principal(tenant="acme", user="bob"),
    Principal(tenant="acme"),  # a key without a user
    Principal(tenant="acme", groups=("sales", "eng")),
    Principal(tenant="globex", user="alice", groups=("eng",)),
    Principal(tenant="globex", admin=True),
]
ACLS = [((), ()), (("alice",), ()), ((), ("eng",)), (("bob",), ("sales",)), (("carol",), ())]


def test_the_backend_and_the_store_follow_can_read_for_every_principal_and_acl(tmp_path: Path):
    """Every (tenant, ACL) document against every principal: search results, chunk reads, listings."""
    documents = list(itertools.product(["acme", "globex"], ACLS))
    vector = np.ones(32, dtype=np.float32) / np.sqrt(32)
    with Fathom(home=tmp_path / "home", embedder="hash:32") as fathom:
        for number, (tenant, (users, groups)) in enumerate(documents):
            draft = ChunkDraft(
                ordinal=0,
                start=0,
                end=17,
                text="access rule check",
                heading_path=(),
                token_count=3,
                content_hash=f"c{number}",
                embedding=vector,
                minhash=np.zeros(64, dtype=np.uint64),
            )
            fathom.store.put_document(
                tenant=tenant,
                source=f"doc{number}.md",
                title=f"doc{number}",
                mime_type="text/markdown",
                content_hash=str(number),
                text="access rule check",
                metadata={},
                chunks=[draft],
                embedding_model="hash:32",
                acl_users=users,
                acl_groups=groups,
            )
        fathom.indexer.catch_up()
        chunk_ids = fathom.store.all_chunk_ids()
        for principal in PRINCIPALS:
            where = filter_for(principal)
            expected = {
                chunk_id
                for chunk_id, (tenant, (users, groups)) in zip(chunk_ids, documents, strict=True)
                if principal.can_read(tenant, users, groups)
            }
            found = fathom.backend.search(SearchRequest("access rule", vector, where, 50))
            assert {i for i, _ in found.lexical} == expected, principal
            assert {i for i, _ in found.dense} == expected, principal
            assert set(fathom.store.chunks_by_id(chunk_ids, where)) == expected, principal
            listed = {d.source for d in fathom.documents(principal=principal)}
            assert listed == {f"doc{chunk_ids.index(i)}.md" for i in expected}, principal
