"""Chunk MinHash fingerprints and page numbers, stored at ingest so search needs neither
to hash its hits nor to look up page offsets.

Existing chunks are filled in here, in batches (about 10k chunks a second).

Revision ID: 0003_chunk_minhash_page
Revises: 0002_service
Create Date: 2026-11-24
"""

import json
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

from fathom.domain import page_at
from fathom.ingest.fingerprint import fingerprint

revision = "0003_chunk_minhash_page"
down_revision = "0002_service"
branch_labels = None
depends_on = None

_BATCH = 2000


def _page_starts(metadata: Any) -> list[int]:
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    structure = metadata.get("structure") if isinstance(metadata, dict) else None
    starts = structure.get("page_starts") if isinstance(structure, dict) else None
    return [int(v) for v in starts] if isinstance(starts, list) else []


def upgrade() -> None:
    op.add_column("chunks", sa.Column("minhash", sa.LargeBinary(), nullable=True))
    op.add_column("chunks", sa.Column("page", sa.Integer(), nullable=True))
    chunks = sa.table(
        "chunks",
        sa.column("id", sa.Integer),
        sa.column("doc_id", sa.String),
        sa.column("text", sa.Text),
        sa.column("start_offset", sa.Integer),
        sa.column("minhash", sa.LargeBinary),
        sa.column("page", sa.Integer),
    )
    documents = sa.table("documents", sa.column("id", sa.String), sa.column("metadata", sa.JSON))
    bind = op.get_bind()
    pages: dict[str, list[int]] = {}
    for doc_id, metadata in bind.execute(sa.select(documents.c.id, documents.c.metadata)):
        starts = _page_starts(metadata)
        if starts:
            pages[doc_id] = starts
    last = 0
    while True:
        query = sa.select(chunks.c.id, chunks.c.doc_id, chunks.c.text, chunks.c.start_offset)
        rows = bind.execute(query.where(chunks.c.id > last).order_by(chunks.c.id).limit(_BATCH)).all()
        if not rows:
            break
        bind.execute(
            chunks.update().where(chunks.c.id == sa.bindparam("chunk_id")),
            [
                {
                    "chunk_id": chunk_id,
                    "minhash": np.asarray(fingerprint(text), dtype=np.uint64).tobytes(),
                    "page": page_at(pages[doc_id], start) if doc_id in pages else None,
                }
                for chunk_id, doc_id, text, start in rows
            ],
        )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("page")
        batch.drop_column("minhash")
