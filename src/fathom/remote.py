"""The CLI's client of a running ``fathom serve``: ``search`` and ``ask`` without loading the model.

With ``FATHOM_URL`` set (e.g. ``http://127.0.0.1:8000``) and ``FATHOM_API_KEY`` holding an API
key of that server, ``fathom search`` and ``fathom ask`` send the query to ``POST /v1/search`` and
``POST /v1/ask`` and print the answer the server gives: the server has the model loaded, so a
command costs one HTTP round trip instead of a model load. Errors come back as the server's
stable codes, raised as :class:`~fathom.errors.FathomError`.

This module imports only httpx and fathom.errors, so remote mode never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from fathom.errors import BackendUnavailable, ConfigError, FathomError, LimitExceeded, ProviderError

__all__ = ["URL_VARIABLE", "KEY_VARIABLE", "RemoteClient", "remote_from_environment"]

URL_VARIABLE = "FATHOM_URL"
KEY_VARIABLE = "FATHOM_API_KEY"

# Reading an answer may take an LLM call on the server; connecting must not hang.
_TIMEOUT = httpx.Timeout(120.0, connect=5.0)


class RemoteClient:
    """Calls the HTTP API of one fathom server with one API key."""

    def __init__(self, url: str, api_key: str | None, *, timeout: httpx.Timeout = _TIMEOUT) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{URL_VARIABLE} must be an http(s) address such as http://127.0.0.1:8000",
                code="config.invalid_url",
            )
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def search(self, query: str, *, k: int, filters: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """The server's hits (``POST /v1/search``), as its JSON objects."""
        body: dict[str, Any] = {"query": query, "k": k}
        if filters:
            body["filters"] = dict(filters)
        hits: list[dict[str, Any]] = self._post("/v1/search", body)["hits"]
        return hits

    def ask(self, question: str, *, k: int | None = None) -> dict[str, Any]:
        """The server's answer (``POST /v1/ask``), as its JSON object."""
        body: dict[str, Any] = {"query": question}
        if k is not None:
            body["k"] = k
        return self._post("/v1/ask", body)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(path, json=body)
        except httpx.TimeoutException:
            raise BackendUnavailable(
                f"the fathom server at {self.url} did not answer in time", code="remote.timeout"
            ) from None
        except httpx.HTTPError:
            raise BackendUnavailable(
                f"cannot reach the fathom server at {self.url} ({URL_VARIABLE})", code="remote.unreachable"
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success and isinstance(data, dict):
            return data
        raise _error_of(response, data)


def _error_of(response: httpx.Response, data: object) -> FathomError:
    """The server's error body (``{"error": {"code", "message"}}``) as a FathomError."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return ProviderError(
            f"the fathom server at {response.url.host} answered HTTP {response.status_code}",
            code="remote.bad_response",
        )
    code: str = error["code"]
    message = str(error.get("message") or code)
    if response.status_code == 429:
        return LimitExceeded(message, code=code, retry_after=_seconds(response.headers.get("Retry-After")))
    return FathomError(message, code=code)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def remote_from_environment() -> RemoteClient | None:
    """A client of ``FATHOM_URL`` with ``FATHOM_API_KEY``, or None when ``FATHOM_URL`` is unset."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        return None
    return RemoteClient(url, os.environ.get(KEY_VARIABLE, "").strip() or None)
