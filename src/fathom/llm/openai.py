"""One OpenAI-compatible chat client: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server, LM Studio.

It streams ``/chat/completions`` over server-sent events with httpx (async), with a
connect timeout, a first-token timeout and a total timeout; it retries 429, 5xx and
connection failures with exponential backoff and jitter (honouring ``Retry-After``)
as long as nothing has been streamed yet; and a circuit breaker stops calling a
provider that keeps failing. Whatever goes wrong surfaces as a :class:`ProviderError`
with a stable code and a message that never contains the provider's raw reply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from fathom.errors import ProviderError
from fathom.llm.base import ChatTurn, Message, TokenUsage, ToolCall
from fathom.llm.resilience import CircuitBreaker, backoff_delay

__all__ = ["OpenAICompatibleProvider"]

log = structlog.get_logger(__name__)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


@dataclass(frozen=True, slots=True)
class _ToolCallDelta:
    """A piece of a streamed tool call: ``index`` says which call it extends."""

    index: int
    id: str | None
    name: str | None
    arguments: str


_Event = str | TokenUsage | _ToolCallDelta


class OpenAICompatibleProvider:
    """Streams chat completions from an OpenAI-compatible endpoint (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        model: str,
        base_url: str,
        api_key: str | None,
        connect_timeout: float,
        first_token_timeout: float,
        total_timeout: float,
        retries: int,
        backoff: float,
        breaker_failures: int,
        breaker_cooldown: float,
    ) -> None:
        self._name = name
        self._model = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
            self._headers["api-key"] = api_key  # Azure OpenAI reads this header instead
        self._first_token_timeout = first_token_timeout
        self._total_timeout = total_timeout
        self._retries = retries
        self._backoff = backoff
        self._breaker = CircuitBreaker(breaker_failures, breaker_cooldown)
        self._timeout = httpx.Timeout(total_timeout, connect=connect_timeout)
        self._client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> AsyncIterator[str | TokenUsage]:
        """Yield text deltas, then one ``TokenUsage``; see the module docstring for failure handling."""
        body = self._body(messages, temperature, max_tokens)
        async for item in self._events(body):
            if not isinstance(item, _ToolCallDelta):
                yield item

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]],
        tool_choice: str,
        temperature: float,
        max_tokens: int,
    ) -> ChatTurn:
        """One reply with the tools protocol: text and tool calls, assembled from the stream.

        Tool calls arrive as deltas (an id and a name first, then pieces of the arguments,
        keyed by ``index``); retries, timeouts and the breaker are those of :meth:`stream`.
        """
        body = self._body(messages, temperature, max_tokens)
        if tools:
            body["tools"] = [dict(tool) for tool in tools]
            body["tool_choice"] = tool_choice
        pieces: list[str] = []
        calls: dict[int, list[str]] = {}
        ids: dict[int, str] = {}
        names: dict[int, str] = {}
        usage = TokenUsage(0, 0)
        async for item in self._events(body):
            if isinstance(item, TokenUsage):
                usage = item
            elif isinstance(item, _ToolCallDelta):
                calls.setdefault(item.index, []).append(item.arguments)
                if item.id:
                    ids[item.index] = item.id
                if item.name:
                    names[item.index] = names.get(item.index, "") + item.name
            else:
                pieces.append(item)
        tool_calls: list[ToolCall] = []
        for index in sorted(calls):
            if index not in names:
                raise _malformed()
            tool_calls.append(ToolCall(ids.get(index, f"call_{index}"), names[index], "".join(calls[index])))
        return ChatTurn("".join(pieces), tuple(tool_calls), usage)

    def _body(
        self, messages: Sequence[Mapping[str, Any]], temperature: float, max_tokens: int
    ) -> dict[str, Any]:
        return {
            "model": self._model,
            "messages": [dict(m) for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    async def _events(self, body: dict[str, Any]) -> AsyncIterator[_Event]:
        """The reply's events with retries, the breaker and failure handling (module docstring)."""
        if not self._breaker.allow():
            raise ProviderError(
                "the language model is temporarily disabled after repeated failures",
                code="provider.circuit_open",
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._total_timeout
        attempt = 0
        streamed = False
        try:
            while True:
                try:
                    async for item in self._attempt(body, deadline):
                        streamed = True
                        yield item
                    break
                except _Retryable as exc:
                    attempt += 1
                    delay = backoff_delay(attempt, self._backoff, retry_after=exc.retry_after)
                    if streamed or attempt > self._retries or loop.time() + delay >= deadline:
                        raise ProviderError(
                            "the language model is unavailable", code=f"provider.{exc.reason}"
                        ) from None
                    log.info("llm.retry", provider=self._name, attempt=attempt, reason=exc.reason)
                    await asyncio.sleep(delay)
        except ProviderError as exc:
            self._breaker.record_failure()
            log.warning("llm.failed", provider=self._name, code=exc.code, breaker=self._breaker.state)
            raise
        self._breaker.record_success()

    async def _attempt(self, body: dict[str, Any], deadline: float) -> AsyncIterator[_Event]:
        loop = asyncio.get_running_loop()
        first_deadline = min(deadline, loop.time() + self._first_token_timeout)
        client = self._http()
        request = client.build_request("POST", self._url, json=body, headers=self._headers)
        try:
            response = await asyncio.wait_for(client.send(request, stream=True), first_deadline - loop.time())
        except (TimeoutError, httpx.TimeoutException):
            raise _Retryable("timeout") from None
        except httpx.TransportError:
            raise _Retryable("unreachable") from None
        try:
            if response.status_code == 429:
                raise _Retryable("rate_limited", _retry_after(response))
            if response.status_code >= 500:
                raise _Retryable("server_error", _retry_after(response))
            if response.status_code in (401, 403):
                raise ProviderError("the language model refused the credentials", code="provider.auth")
            if response.status_code >= 400:
                raise ProviderError("the language model refused the request", code="provider.refused")
            if response.headers.get("content-type", "").startswith("application/json"):
                # A server that ignores "stream": one complete JSON body.
                raw = await asyncio.wait_for(response.aread(), deadline - loop.time())
                for item in _parse_completion(raw):
                    yield item
                return
            usage: TokenUsage | None = None
            text_chars = 0
            lines = response.aiter_lines()
            while True:
                limit = (deadline if text_chars else first_deadline) - loop.time()
                try:
                    line = await asyncio.wait_for(anext(lines), max(limit, 0.001))
                except StopAsyncIteration:
                    break
                except (TimeoutError, httpx.TimeoutException):
                    if text_chars:
                        raise ProviderError("the language model timed out", code="provider.timeout") from None
                    raise _Retryable("timeout") from None
                except httpx.TransportError:
                    raise ProviderError(
                        "the language model connection broke", code="provider.broken"
                    ) from None
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event names
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                delta, reported, tool_deltas = _parse_event(data)
                if reported is not None:
                    usage = reported
                if delta:
                    text_chars += len(delta)
                    yield delta
                for tool_delta in tool_deltas:
                    text_chars += len(tool_delta.arguments) + len(tool_delta.name or "") + 1
                    yield tool_delta
            if usage is None:
                prompt = sum(len(str(m.get("content") or "")) for m in body["messages"])
                usage = TokenUsage(_estimate_tokens("x" * prompt), _estimate_tokens("x" * text_chars))
            yield usage
        finally:
            await response.aclose()


def _malformed() -> ProviderError:
    return ProviderError("the language model sent a malformed reply", code="provider.malformed")


def _usage(data: dict[str, Any]) -> TokenUsage | None:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    try:
        return TokenUsage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
    except (TypeError, ValueError):
        raise _malformed() from None


def _tool_deltas(raw: Any, *, whole: bool = False) -> list[_ToolCallDelta]:
    """The tool calls of a delta (streamed pieces) or of a whole message."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _malformed()
    out: list[_ToolCallDelta] = []
    for position, call in enumerate(raw):
        if not isinstance(call, dict):
            raise _malformed()
        function = call.get("function") or {}
        index = position if whole else call.get("index", position)
        name = function.get("name") if isinstance(function, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        call_id = call.get("id")
        if (
            not isinstance(index, int)
            or not isinstance(function, dict)
            or (name is not None and not isinstance(name, str))
            or (arguments is not None and not isinstance(arguments, str))
            or (call_id is not None and not isinstance(call_id, str))
        ):
            raise _malformed()
        out.append(_ToolCallDelta(index, call_id, name, arguments or ""))
    return out


def _parse_event(data: str) -> tuple[str, TokenUsage | None, list[_ToolCallDelta]]:
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        raise _malformed() from None
    if not isinstance(event, dict):
        raise _malformed()
    if "error" in event:
        raise ProviderError("the language model reported an error", code="provider.error")
    choices = event.get("choices")
    if not isinstance(choices, list):
        raise _malformed()
    text = ""
    tools: list[_ToolCallDelta] = []
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise _malformed()
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            raise _malformed()
        text += content or ""
        tools += _tool_deltas(delta.get("tool_calls"))
    return text, _usage(event), tools


def _parse_completion(raw: bytes) -> list[_Event]:
    try:
        body = json.loads(raw)
        message = body["choices"][0]["message"]
        content = message.get("content")
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        raise _malformed() from None
    tools = _tool_deltas(message.get("tool_calls"), whole=True)
    if content is None and tools:
        content = ""
    if not isinstance(content, str):
        raise _malformed()
    usage = _usage(body) or TokenUsage(0, _estimate_tokens(content))
    return [content, *tools, usage]
