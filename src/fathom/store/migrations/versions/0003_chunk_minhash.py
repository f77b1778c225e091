"""Chunk MinHash fingerprints, stored at ingest so search collapses near-duplicates cheaply.

Existing chunks are fingerprinted here, in batches (about 10k chunks a second).

Revision ID: 0003_chunk_minhash
Revises: 0002_service
Create Date: 2026-11-24
"""

import numpy as np
import sqlalchemy as sa
from alembic import op

from fathom.ingest.fingerprint import fingerprint

revision = "0003_chunk_minhash"
down_revision = "0002_service"
branch_labels = None
depends_on = None

_BATCH = 2000


def upgrade() -> None:
    op.add_column("chunks", sa.Column("minhash", sa.LargeBinary(), nullable=True))
    chunks = sa.table(
        "chunks",
        sa.column("id", sa.Integer),
        sa.column("text", sa.Text),
        sa.column("minhash", sa.LargeBinary),
    )
    bind = op.get_bind()
    last = 0
    while True:
        page = sa.select(chunks.c.id, chunks.c.text).where(chunks.c.id > last)
        rows = bind.execute(page.order_by(chunks.c.id).limit(_BATCH)).all()
        if not rows:
            break
        bind.execute(
            chunks.update().where(chunks.c.id == sa.bindparam("chunk_id")),
            [
                {"chunk_id": chunk_id, "minhash": np.asarray(fingerprint(text), dtype=np.uint64).tobytes()}
                for chunk_id, text in rows
            ],
        )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("minhash")
