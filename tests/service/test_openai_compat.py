"""The OpenAI-compatible endpoint, driven by the official ``openai`` SDK against a real ``fathom serve``."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

from fathom import Fathom
from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

CLOUDNOVA = (
    "# CloudNova operations guide\n\nCloudNova runs cloud infrastructure for backend teams.\n\n"
    "## Contact\n\nSupport Email: ops@cloudnova.ai\n\nEmergency Phone: +91 9876543244\n"
)
NEUROSTACK = (
    "# NeuroStack AI handbook\n\nNeuroStack AI builds enterprise AI platforms.\n\n"
    "## Contact\n\nSupport Email: ops@neurostack.ai\n\nEmergency Phone: +91 9876543277\n"
)
BURST = 30


@dataclass
class Site:
    server: ServerProcess
    home: Path
    acme: str
    other: str
    clients: list[openai.OpenAI] = field(default_factory=list)

    def client(self, key: str | None = None) -> openai.OpenAI:
        client = openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=key or self.acme, max_retries=0)
        self.clients.append(client)
        return client

    def new_key(self) -> str:
        with Fathom(home=self.home, embedder="hash:64") as fathom:
            return fathom.keys.create(tenant="acme", user="bob")[0]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("openai") / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:  # keys only: no model is loaded
        acme, _ = fathom.keys.create(tenant="acme", user="alice")
        other, _ = fathom.keys.create(tenant="other", user="carol")
    env = {
        "FATHOM_LOG_LEVEL": "WARNING",
        "FATHOM_RATE_LIMIT_PER_MINUTE": "1",
        "FATHOM_RATE_LIMIT_BURST": str(BURST),
    }
    server = ServerProcess(home, env).wait_ready(timeout=180)
    try:
        server.upload(acme, "cloudnova.md", text=CLOUDNOVA)
        server.upload(acme, "neurostack.md", text=NEUROSTACK)
        site = Site(server, home, acme, other)
        yield site
        for client in site.clients:
            client.close()
    finally:
        server.stop()


def test_models_lists_fathom_and_its_agent_mode(site: Site):
    client = site.client()
    assert sorted(model.id for model in client.models.list()) == ["fathom", "fathom-agent"]
    assert client.models.retrieve("fathom").owned_by == "fathom"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert missing.value.code == "model.not_found"


def test_a_completion_answers_with_citations_in_the_text_and_the_extension(site: Site):
    completion = site.client().chat.completions.create(
        model="fathom", messages=[{"role": "user", "content": "What is CloudNova's support email?"}]
    )
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "fathom" and completion.choices[0].finish_reason == "stop"
    content = completion.choices[0].message.content
    assert content is not None and "ops@cloudnova.ai" in content
    answer, sources = content.split("\n\nSources:\n")
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer)}
    assert cited and all(f"[{n}] CloudNova operations guide (cloudnova.md" in sources for n in cited)
    extension = (completion.model_extra or {})["fathom"]
    assert extension["answer_id"] and not extension["abstained"]
    assert {c["source"] for c in extension["citations"]} == {"cloudnova.md"}
    assert any("ops@cloudnova.ai" in c["quote"] for c in extension["citations"])
    assert completion.usage is not None and completion.usage.total_tokens == 0  # extractive: no LLM tokens


def test_fathom_agent_is_agent_mode_which_without_an_llm_says_so(site: Site):
    completion = site.client().chat.completions.create(
        model="fathom-agent", messages=[{"role": "user", "content": "What is CloudNova's support email?"}]
    )
    assert completion.model == "fathom-agent" and "ops@cloudnova.ai" in (
        completion.choices[0].message.content or ""
    )
    notes = (completion.model_extra or {})["fathom"]["notes"]
    assert any("agent mode needs an LLM" in note for note in notes), notes


def test_earlier_messages_are_the_conversation_a_follow_up_is_read_in(site: Site):
    client = site.client()
    first = client.chat.completions.create(
        model="fathom", messages=[{"role": "user", "content": "What is CloudNova's support email?"}]
    )
    follow_up = client.chat.completions.create(
        model="fathom",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is CloudNova's support email?"},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": [{"type": "text", "text": "And its emergency phone?"}]},
        ],
    )
    content = follow_up.choices[0].message.content or ""
    assert "9876543244" in content and "9876543277" not in content
    rewrite = (follow_up.model_extra or {})["fathom"]["rewrite"]
    assert rewrite["standalone"] == "CloudNova's emergency phone?" and rewrite["method"] == "carry_over"


def test_streaming_sends_openai_chunks_of_the_same_answer_then_done(site: Site):
    client = site.client()
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "What is NeuroStack AI's emergency phone?"}
    ]
    whole = client.chat.completions.create(model="fathom", messages=messages)
    chunks = list(
        client.chat.completions.create(
            model="fathom", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content and "9876543277" in streamed
    last_choice = [c for c in chunks if c.choices][-1]
    assert last_choice.choices[0].finish_reason == "stop"
    assert (last_choice.model_extra or {})["fathom"]["citations"][0]["source"] == "neurostack.md"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    # The wire format: every event is a `data:` line, the last one `data: [DONE]`.
    raw = httpx.post(
        f"{site.server.url}/v1/chat/completions",
        json={"model": "fathom", "messages": messages, "stream": True},
        headers={"Authorization": f"Bearer {site.acme}"},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = [e for e in raw.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"


def test_another_tenant_gets_nothing_from_acme(site: Site):
    completion = site.client(site.other).chat.completions.create(
        model="fathom", messages=[{"role": "user", "content": "What is CloudNova's support email?"}]
    )
    content = completion.choices[0].message.content or ""
    extension = (completion.model_extra or {})["fathom"]
    assert extension["abstained"] and extension["citations"] == [] and "cloudnova" not in content.lower()


def test_errors_come_in_openais_envelope_with_fathoms_codes(site: Site):
    client = site.client()
    with pytest.raises(openai.AuthenticationError) as bad_key:
        site.client("fathom_not_a_key").chat.completions.create(
            model="fathom", messages=[{"role": "user", "content": "hello?"}]
        )
    assert bad_key.value.code == "auth.invalid_key" and bad_key.value.type == "authentication_error"
    with pytest.raises(openai.NotFoundError) as model:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello?"}])
    assert model.value.code == "model.not_found" and "fathom-agent" in model.value.message
    with pytest.raises(openai.UnprocessableEntityError) as last:
        client.chat.completions.create(model="fathom", messages=[{"role": "assistant", "content": "Hi."}])
    assert last.value.code == "chat.no_question"
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with pytest.raises(openai.UnprocessableEntityError) as picture:
        client.chat.completions.create(model="fathom", messages=[{"role": "user", "content": [image]}])
    assert picture.value.code == "request.invalid"
    for stream in (False, True):  # refused before any chunk is sent, streaming or not
        with pytest.raises(openai.UnprocessableEntityError) as long:
            client.chat.completions.create(
                model="fathom", messages=[{"role": "user", "content": "why " * 1000}], stream=stream
            )
        assert long.value.code == "query.too_long"
        body = long.value.body
        assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code", "request_id"}


def test_a_key_without_the_ask_scope_gets_no_completion(site: Site):
    with Fathom(home=site.home, embedder="hash:64") as fathom:
        search_only = fathom.keys.create(tenant="acme", user="dave", scopes=["search"])[0]
    client = site.client(search_only)
    for stream in (False, True):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.chat.completions.create(
                model="fathom",
                messages=[{"role": "user", "content": "What is CloudNova's support email?"}],
                stream=stream,
            )
        assert refused.value.code == "auth.scope_missing"


def test_the_keys_request_budget_applies(site: Site):
    client = site.client(site.new_key())
    for _ in range(BURST):
        client.models.list()
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="fathom", messages=[{"role": "user", "content": "hello?"}])
    assert limited.value.code == "rate_limit.requests"
    assert int(limited.value.response.headers["retry-after"]) >= 1


def test_the_sdk_example_in_docs_service_md_runs(site: Site, tmp_path: Path):
    text = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    example = text.split("<!-- openai-sdk-example -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    env = {"FATHOM_URL": site.server.url, "FATHOM_API_KEY": site.acme, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "ops@cloudnova.ai" in run.stdout and "cloudnova.md" in run.stdout
