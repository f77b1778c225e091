"""Fetching a URL for ingestion without becoming a proxy into private networks (SSRF).

Only http and https. For every hop, redirects included, the host is resolved
once, every address it resolves to is checked against loopback, private,
link-local, shared (CGNAT), multicast, reserved and cloud-metadata ranges, and
the connection goes to the checked address (so DNS cannot change its answer
between the check and the connection). Hosts or networks in ``url_allow`` are
exempt. Size and total time are capped; the content type is sniffed from the
bytes by the parsers, with the server's ``Content-Type`` only as a hint.

The time limit is one deadline for the whole fetch: name resolution, connecting,
the TLS handshake, every redirect hop, the headers and the body. Socket timeouts
alone bound each read, not their sum, so a server that drips a byte a second
would never time out; a watchdog timer shuts the connection's socket down when
the deadline passes, whatever the fetch is waiting for.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import structlog

from fathom.errors import IngestError

__all__ = ["FetchLimits", "Fetched", "address_allowed", "check_destination", "fetch_url", "post_once"]

log = structlog.get_logger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud
}
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_REDIRECTS = {301, 302, 303, 307, 308}
_SUFFIX_BY_TYPE = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/markdown": ".md",
    "text/plain": ".txt",
    "text/csv": ".csv",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "message/rfc822": ".eml",
}


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """What a fetch may do: reach these allowed hosts/networks, read this much, for this long."""

    allow: Sequence[str] = ()
    max_bytes: int = 20 * 1024 * 1024
    timeout_seconds: float = 20.0
    max_redirects: int = 5


@dataclass(frozen=True, slots=True)
class Fetched:
    """A downloaded body, the URL it finally came from, and a file name hinting at its type."""

    url: str
    data: bytes
    content_type: str
    name: str


def _refused(message: str, code: str) -> IngestError:
    return IngestError(message, code=code)


def address_allowed(address: IPAddress, host: str, allow: Sequence[str]) -> bool:
    """Whether a resolved address may be contacted: public, or allowed by configuration."""
    for entry in allow:
        if entry.lower() == host.lower():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_allowed(address.ipv4_mapped, host, allow)
    return not (
        address in _METADATA
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED)
    )


def _timed_out() -> IngestError:
    return _refused("fetching the URL took too long", "url.timeout")


def _lookup(host: str, port: int, deadline: float) -> list[Any]:
    """``getaddrinfo`` bounded by the deadline (the resolver itself cannot be interrupted)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, name="fathom-resolve", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if not outcome:
        raise _timed_out()
    if isinstance(outcome[0], BaseException):
        raise _refused(f"cannot resolve host {host!r}", "url.unreachable") from outcome[0]
    return list(outcome[0])


def _resolve(host: str, port: int, allow: Sequence[str], deadline: float) -> str:
    """Resolve ``host`` and return one address to connect to; every address must be allowed."""
    infos = _lookup(host, port, deadline)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise _refused(f"cannot resolve host {host!r}", "url.unreachable")
    for address in addresses:
        if not address_allowed(address, host, allow):
            log.warning("url.blocked_address", reason="private_or_reserved")
            raise _refused(
                f"{host} resolves to a loopback, private, link-local or metadata address; refused "
                "(allow it with the url_allow setting)",
                "url.blocked_address",
            )
    return str(addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        wrapped = self._context.wrap_socket(  # type: ignore[attr-defined]
            sock, server_hostname=self.host, do_handshake_on_connect=False
        )
        # Visible to the watchdog before the handshake, so a stalled handshake is cut too.
        self.sock = wrapped
        wrapped.do_handshake()


class _Watchdog:
    """Shuts a connection's socket down at the deadline, so a blocked read returns at once."""

    def __init__(self, connection: http.client.HTTPConnection, deadline: float) -> None:
        self.fired = False
        self._connection = connection
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            # The plain socket's shutdown, also for TLS: no TLS state is touched from here.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _name_for(url: str, content_type: str) -> str:
    path_name = urlsplit(url).path.rsplit("/", 1)[-1]
    if "." in path_name:
        return path_name
    return (path_name or "index") + _SUFFIX_BY_TYPE.get(content_type, "")


def fetch_url(url: str, limits: FetchLimits) -> Fetched:
    """Download ``url`` under ``limits``, following and checking redirects.

    Raises:
        IngestError: with a ``url.*`` code: ``url.invalid``, ``url.scheme_not_allowed``,
            ``url.blocked_address``, ``url.unreachable``, ``url.timeout``,
            ``url.too_many_redirects``, ``url.http_error`` or ``url.too_large``.
    """
    deadline = time.monotonic() + limits.timeout_seconds
    current = url
    for _hop in range(limits.max_redirects + 1):
        headers = {"User-Agent": "fathom", "Accept": "*/*"}
        with _exchange(current, limits.allow, deadline, "GET", None, headers) as (response, watchdog):
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise _refused("the server redirected without a location", "url.http_error")
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise _refused(f"the server answered HTTP {response.status}", "url.http_error")
            content_type = (response.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise _refused(f"the document is larger than {limits.max_bytes} bytes", "url.too_large")
            data = _read_body(response, limits.max_bytes, deadline)
            if watchdog.fired:  # cut at the deadline: the body may look complete but is not
                raise _timed_out()
            return Fetched(current, data, content_type, _name_for(current, content_type))
    raise _refused(f"more than {limits.max_redirects} redirects", "url.too_many_redirects")


def post_once(
    url: str, body: bytes, headers: Mapping[str, str], *, allow: Sequence[str], timeout_seconds: float
) -> int:
    """POST ``body`` to ``url`` under the same address checks and one total deadline; returns
    the HTTP status. Redirects are not followed (a 3xx is returned as it is); the response body
    is not read.

    Raises:
        IngestError: with a ``url.*`` code, as :func:`fetch_url` (``url.timeout`` when the
            deadline passed before the status line and headers arrived).
    """
    deadline = time.monotonic() + timeout_seconds
    with _exchange(url, allow, deadline, "POST", body, dict(headers)) as (response, watchdog):
        if watchdog.fired:
            raise _timed_out()
        return int(response.status)


def check_destination(url: str, *, allow: Sequence[str], timeout_seconds: float) -> None:
    """Check that ``url`` is http(s) and that every address its host resolves to may be
    contacted (see :func:`address_allowed`), without connecting.

    Raises:
        IngestError: ``url.invalid``, ``url.scheme_not_allowed``, ``url.blocked_address``,
            ``url.unreachable`` (the host does not resolve) or ``url.timeout``.
    """
    host, port = _host_port(url)
    _resolve(host, port, allow, time.monotonic() + timeout_seconds)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _refused("only http and https URLs are allowed", "url.scheme_not_allowed")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise _refused("the URL is not valid", "url.invalid") from exc
    if not host:
        raise _refused("the URL has no host", "url.invalid")
    return host, port or (443 if parts.scheme == "https" else 80)


@contextlib.contextmanager
def _exchange(
    url: str,
    allow: Sequence[str],
    deadline: float,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
) -> Iterator[tuple[http.client.HTTPResponse, _Watchdog]]:
    """One request to ``url`` (one hop) through the address checks, under ``deadline``: the
    response and the watchdog that cuts the connection at the deadline. Socket errors inside
    the block become ``url.timeout`` or ``url.unreachable``; the connection is closed after it."""
    host, port = _host_port(url)
    parts = urlsplit(url)
    address = _resolve(host, port, allow, deadline)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timed_out()
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = kind(host, port, address, remaining)
    watchdog = _Watchdog(connection, deadline)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        yield response, watchdog
    except TimeoutError as exc:
        raise _timed_out() from exc
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.fired:
            raise _timed_out() from exc
        raise _refused("the server could not be reached", "url.unreachable") from exc
    finally:
        watchdog.cancel()
        connection.close()


def _read_body(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := response.read(65536):
        size += len(chunk)
        if size > max_bytes:
            raise _refused(f"the document is larger than {max_bytes} bytes", "url.too_large")
        if time.monotonic() > deadline:
            raise _timed_out()
        parts.append(chunk)
    return b"".join(parts)
