"""The chat provider protocol and the registry that builds providers from config strings.

A provider streams text deltas for a list of chat messages and ends with one
:class:`TokenUsage`. Config strings look like ``openai:MODEL`` (the endpoint is
``llm_base_url``), ``openai:MODEL@BASE_URL`` for a fallback on another endpoint, or
``gguf:gemma3-270m`` / ``gguf:/path/model.gguf`` for a local model run in-process by
llama.cpp (the ``gguf`` extra). ``extractive`` is not a provider: it is the answerer that
needs none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, runtime_checkable

from fathom.domain import Usage
from fathom.errors import ConfigError

if TYPE_CHECKING:
    from fathom.config import Settings

__all__ = [
    "EXTRACTIVE",
    "ChatProvider",
    "ChatTurn",
    "Completion",
    "Message",
    "TokenUsage",
    "ToolCall",
    "ToolChatProvider",
    "create_provider",
    "parse_provider_spec",
]

EXTRACTIVE = "extractive"


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of one generation as the provider counted them (estimated when it did not say)."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Completion:
    """The whole text of one short generation through the provider chain, or why there is none.

    ``text`` is None when no provider answered; ``failure`` then holds a stable code
    (``provider.timeout``, ``budget.exhausted``, ...) and never a provider's raw reply.
    """

    text: str | None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    failure: str | None = None


@runtime_checkable
class ChatProvider(Protocol):
    """Streams a chat completion."""

    @property
    def name(self) -> str:
        """The config string naming this provider, e.g. ``openai:gpt-4o-mini``."""
        ...

    @property
    def model(self) -> str:
        """The model name sent to the endpoint (the key of the price table)."""
        ...

    def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> AsyncIterator[str | TokenUsage]:
        """Yield text deltas, then exactly one ``TokenUsage``.

        Raises:
            ProviderError: the provider failed, timed out or answered malformed output.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for (OpenAI tools protocol); ``arguments`` is its raw JSON."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One complete model reply of a tool-using conversation: text, tool calls, or both."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: TokenUsage


@runtime_checkable
class ToolChatProvider(Protocol):
    """A provider that speaks the OpenAI-compatible tools protocol (agent mode needs one).

    ``messages`` may hold assistant messages with ``tool_calls`` and ``tool`` messages with a
    ``tool_call_id``, as the protocol defines; ``tools`` are function definitions.
    """

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]],
        tool_choice: str,
        temperature: float,
        max_tokens: int,
    ) -> ChatTurn:
        """The model's whole reply (streamed and assembled).

        Raises:
            ProviderError: the provider failed, timed out or answered malformed output.
        """
        ...


def parse_provider_spec(spec: str) -> tuple[str, str, str | None]:
    """Split ``PROVIDER:MODEL[@BASE_URL]`` into its parts (``gguf:`` takes no base URL).

    Raises:
        ConfigError: the string does not name a known provider and a model.
    """
    provider, _, rest = spec.partition(":")
    if provider == "gguf":
        from fathom.llm.gguf import is_gguf_reference

        if not is_gguf_reference(rest):
            raise ConfigError(
                f"llm {spec!r}: 'gguf:' takes a packaged model (gguf:gemma3-270m) or a path to a .gguf file"
            )
        return provider, rest, None
    model, _, base_url = rest.partition("@")
    if provider != "openai" or not model:
        raise ConfigError(
            f"llm {spec!r} must be 'extractive', 'openai:MODEL' (optionally '@BASE_URL') or 'gguf:MODEL'"
        )
    return provider, model, base_url or None


def create_provider(spec: str, settings: Settings) -> ChatProvider:
    """Build the provider a config string names, with the timeouts and retries of ``settings``.

    Raises:
        ConfigError: the string names no known provider, or a ``gguf:`` provider whose extra
            is not installed.
    """
    provider, model, base_url = parse_provider_spec(spec)
    if provider == "gguf":
        from fathom.llm.gguf import GGUFProvider, check_gguf_installed

        check_gguf_installed(model)
        return GGUFProvider(
            spec,
            reference=model,
            context_size=settings.gguf_context_size,
            threads=settings.gguf_threads,
            first_token_timeout=settings.llm_first_token_timeout,
            total_timeout=settings.llm_total_timeout,
            breaker_failures=settings.llm_breaker_failures,
            breaker_cooldown=settings.llm_breaker_cooldown,
        )
    from fathom.llm.openai import OpenAICompatibleProvider

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAICompatibleProvider(
        spec,
        model=model,
        base_url=base_url or settings.llm_base_url,
        api_key=key,
        connect_timeout=settings.llm_connect_timeout,
        first_token_timeout=settings.llm_first_token_timeout,
        total_timeout=settings.llm_total_timeout,
        retries=settings.llm_retries,
        backoff=settings.llm_backoff,
        breaker_failures=settings.llm_breaker_failures,
        breaker_cooldown=settings.llm_breaker_cooldown,
    )
