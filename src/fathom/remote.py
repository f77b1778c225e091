"""The CLI's client of a running ``fathom serve``: ``search`` and ``ask`` without loading the model.

With ``FATHOM_URL`` set (e.g. ``http://127.0.0.1:8000``) and ``FATHOM_API_KEY`` holding an API
key of that server, ``fathom search`` and ``fathom ask`` send the query to ``POST /v1/search`` and
``POST /v1/ask`` and print the answer the server gives: the server has the model loaded, so a
command costs one HTTP round trip instead of a model load. Errors come back as the server's
stable codes, raised as :class:`~fathom.errors.FathomError`.

It uses the standard library's ``http.client``: importing httpx alone costs more CPU (about
150 ms) than the whole round trip, and this client exists to make a command fast.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from fathom.errors import BackendUnavailable, ConfigError, FathomError, LimitExceeded, ProviderError

__all__ = ["KEY_VARIABLE", "URL_VARIABLE", "RemoteClient", "remote_from_environment"]

URL_VARIABLE = "FATHOM_URL"
KEY_VARIABLE = "FATHOM_API_KEY"

# Reading an answer may take an LLM call on the server; connecting must not hang.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120.0


class RemoteClient:
    """Calls the HTTP API of one fathom server with one API key (a connection per request)."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{URL_VARIABLE} must be an http(s) address such as http://127.0.0.1:8000",
                code="config.invalid_url",
            )
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"{URL_VARIABLE} has an invalid port", code="config.invalid_url") from None
        self.url = url.strip().rstrip("/")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, port
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

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
        connection_class = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_class(self._host, self._port, timeout=self._connect_timeout)
        try:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(self._read_timeout)
            connection.request("POST", self._prefix + path, json.dumps(body).encode(), self._headers)
            response = connection.getresponse()
            raw = response.read()
        except TimeoutError:
            raise BackendUnavailable(
                f"the fathom server at {self.url} did not answer in time", code="remote.timeout"
            ) from None
        except (OSError, http.client.HTTPException):
            raise BackendUnavailable(
                f"cannot reach the fathom server at {self.url} ({URL_VARIABLE})", code="remote.unreachable"
            ) from None
        finally:
            connection.close()
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if 200 <= response.status < 300 and isinstance(data, dict):
            return data
        raise _error_of(self.url, response, data)


def _error_of(url: str, response: http.client.HTTPResponse, data: object) -> FathomError:
    """The server's error body (``{"error": {"code", "message"}}``) as a FathomError."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return ProviderError(
            f"the fathom server at {url} answered HTTP {response.status}", code="remote.bad_response"
        )
    code: str = error["code"]
    message = str(error.get("message") or code)
    if response.status == 429:
        return LimitExceeded(message, code=code, retry_after=_seconds(response.getheader("Retry-After")))
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
