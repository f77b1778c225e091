"""One corpus, embedded and served: a Markdown handbook and a two-page PDF, in tenant acme."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from fathom import Fathom
from fathom.embed import Embedder
from tests.files import make_pdf
from tests.service.server import ServerProcess

HANDBOOK = (
    "# NeuroStack AI handbook\n\nNeuroStack AI builds enterprise AI platforms.\n\n"
    "## Contact\n\n### Support\n\nSupport Email: ops@neurostack.ai\n\nEmergency Phone: +91 9876543277\n"
)
PDF_PAGES = [
    "CloudNova operations guide\nCloudNova runs cloud infrastructure for backend teams.",
    "Contact\nThe CloudNova emergency phone is +91 9876543244, answered day and night.",
]


@dataclass
class World:
    embedded: Fathom
    server: ServerProcess
    acme_key: str
    other_key: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[World]:
    root = tmp_path_factory.mktemp("integrations")
    pdf = make_pdf(root / "cloudnova.pdf", PDF_PAGES).read_bytes()
    # Embedded: the real packaged model, in this process.
    with Fathom(home=root / "embedded", embedder=embedder, tenant="acme") as embedded:
        embedded.ingest_text(HANDBOOK, source="neurostack.md")
        (root / "cloudnova.pdf").write_bytes(pdf)
        embedded.ingest([root / "cloudnova.pdf"])
        # Served: `fathom serve` over another home, the same corpus uploaded by a key of tenant acme.
        served_home = root / "served"
        with Fathom(home=served_home, embedder="hash:64") as keys_only:  # no model is loaded
            acme_key, _ = keys_only.keys.create(tenant="acme", user="alice")
            other_key, _ = keys_only.keys.create(tenant="other", user="carol")
        server = ServerProcess(served_home, {"FATHOM_LOG_LEVEL": "WARNING"}).wait_ready(timeout=180)
        try:
            server.upload(acme_key, "neurostack.md", text=HANDBOOK)
            server.upload(acme_key, "cloudnova.pdf", data=pdf)
            yield World(embedded, server, acme_key, other_key)
        finally:
            server.stop()
