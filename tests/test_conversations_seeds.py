"""Must hold: on the seeds corpus, "What is CloudNova's support email?" then "And its emergency phone?"
finds CloudNova's phone, not another company's, with the real model and no LLM (deterministic
carry-over): through the Python API, REST, and `fathom chat` driven in a pseudo-terminal.

Several companies in the corpus list an emergency phone; asked alone, the follow-up cannot
tell which one is meant.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fathom import Fathom
from fathom.embed import Embedder
from fathom.service import create_app
from tests.conftest import require_shared

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIRST = "What is CloudNova's support email?"
FOLLOW_UP = "And its emergency phone?"
CLOUDNOVA_PHONE = "9876543244"
OTHER_PHONES = ["9876543233", "9876543255", "9876543266", "9876543277", "9876543288", "9876543299"]


@pytest.fixture(scope="module")
def seeds_home(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    seeds = require_shared("corpus", "seeds")
    home = tmp_path_factory.mktemp("seeds-chat")
    with Fathom(home=home, embedder=embedder) as fathom:
        assert fathom.ingest([seeds]).ok
    return home


@pytest.fixture
def seeded(seeds_home: Path, embedder: Embedder) -> Iterator[Fathom]:
    with Fathom(home=seeds_home, embedder=embedder) as fathom:
        yield fathom


def _only_cloudnova(text: str) -> None:
    assert CLOUDNOVA_PHONE in text, text
    assert not [p for p in OTHER_PHONES if p in text], text


def test_the_follow_up_alone_is_ambiguous(seeded: Fathom) -> None:
    alone = seeded.ask(FOLLOW_UP)
    assert any(p in alone.answer for p in OTHER_PHONES) or CLOUDNOVA_PHONE not in alone.answer


def test_python_api(seeded: Fathom) -> None:
    conversation = seeded.start_conversation()
    first = seeded.converse(conversation.conversation_id, FIRST)
    assert "ops@cloudnova.ai" in first.answer
    second = seeded.converse(conversation.conversation_id, FOLLOW_UP)
    assert second.rewrite is not None and second.rewrite.method == "carry_over"
    assert second.rewrite.standalone == "CloudNova's emergency phone?"
    _only_cloudnova(second.answer)
    quote = next(c for c in second.citations if CLOUDNOVA_PHONE in c.quote)
    assert seeded.document_text(quote.doc_id)[quote.start : quote.end] == quote.quote


def test_rest(seeded: Fathom) -> None:
    key, _ = seeded.keys.create(tenant=seeded.settings.tenant, user="alice")
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(fathom=seeded, start_workers=False)) as client:
        conversation_id = client.post("/v1/conversations", headers=headers).json()["conversation_id"]
        url = f"/v1/conversations/{conversation_id}/messages"
        first = client.post(url, json={"question": FIRST}, headers=headers).json()
        assert "ops@cloudnova.ai" in first["answer"]
        second = client.post(url, json={"question": FOLLOW_UP}, headers=headers).json()
        assert second["rewrite"]["standalone"] == "CloudNova's emergency phone?"
        _only_cloudnova(second["answer"])
        turns = client.get(f"/v1/conversations/{conversation_id}", headers=headers).json()["turns"]
    assert [t["question"] for t in turns] == [FIRST, FOLLOW_UP]
    assert any(CLOUDNOVA_PHONE in c["quote"] for c in turns[1]["citations"])


class _Terminal:
    """A program on a pseudo-terminal: type lines, read the screen up to a prompt."""

    _ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")

    def __init__(self, args: list[str]) -> None:
        self.master, slave = os.openpty()
        env = {**os.environ, "COLUMNS": "200", "TERM": "xterm"}
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
        )
        os.close(slave)
        self.screen = ""

    def read_until(self, marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        start = len(self.screen)
        while marker not in self.screen[start:]:
            left = deadline - time.monotonic()
            if (
                left <= 0
                or self.process.poll() is not None
                and not select.select([self.master], [], [], 0)[0]
            ):
                raise AssertionError(f"no {marker!r} on the terminal; it shows:\n{self.screen[-2000:]}")
            if select.select([self.master], [], [], min(left, 0.5))[0]:
                try:
                    self.screen += self._ANSI.sub("", os.read(self.master, 65536).decode(errors="replace"))
                except OSError:
                    continue
        return self.screen[start:]

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        os.close(self.master)


def test_fathom_chat_in_a_terminal(seeds_home: Path) -> None:
    terminal = _Terminal([sys.executable, "-m", "fathom", "chat", "--home", str(seeds_home)])
    try:
        banner = terminal.read_until("you> ", timeout=180)
        conversation_id = re.search(r"conversation ([0-9a-f]{32})", banner)
        assert conversation_id, banner
        terminal.type(FIRST)
        first = terminal.read_until("you> ", timeout=120)
        assert "ops@cloudnova.ai" in first and "[1]" in first
        terminal.type(FOLLOW_UP)
        second = terminal.read_until("you> ", timeout=120)
        assert "(searched as: CloudNova's emergency phone?)" in second
        _only_cloudnova(second)
        terminal.type("/quit")
        assert terminal.process.wait(30) == 0
    finally:
        terminal.close()
    # The conversation was stored: `--conversation ID` resumes it, earlier turns shown first.
    resumed = _Terminal(
        [
            sys.executable,
            "-m",
            "fathom",
            "chat",
            "--home",
            str(seeds_home),
            "--conversation",
            conversation_id[1],
        ]
    )
    try:
        shown = resumed.read_until("you> ", timeout=180)  # earlier turns read "you: ..."
        assert FIRST in shown and FOLLOW_UP in shown and CLOUDNOVA_PHONE in shown
        resumed.type("/quit")
        assert resumed.process.wait(30) == 0
    finally:
        resumed.close()
