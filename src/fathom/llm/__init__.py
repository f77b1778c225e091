"""LLM providers behind one small protocol, with resilience and a sync bridge."""

from fathom.llm.base import ChatProvider, Message, TokenUsage, create_provider, parse_provider_spec

__all__ = ["ChatProvider", "Message", "TokenUsage", "create_provider", "parse_provider_spec"]
