"""A small OTLP/HTTP trace receiver on 127.0.0.1: it speaks the real protocol (``POST /v1/traces``
with a protobuf ``ExportTraceServiceRequest``, answered by an ``ExportTraceServiceResponse``)
and keeps the spans it was sent, so tests check the trees fathom exports."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.service.server import free_port


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    start_ns: int
    end_ns: int
    status_code: int
    service: str
    children: list[Span] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class OtlpReceiver:
    """``endpoint`` is the URL to give as ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/v1/traces"
        self.spans: list[Span] = []
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(415 if self.path == "/v1/traces" else 404)
                    self.end_headers()
                    return
                receiver._add(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _add(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            Span(
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_id=span.parent_span_id.hex(),
                                name=span.name,
                                kind=span.kind,
                                attributes={a.key: _value(a.value) for a in span.attributes},
                                start_ns=span.start_time_unix_nano,
                                end_ns=span.end_time_unix_nano,
                                status_code=span.status.code,
                                service=str(resource.get("service.name")),
                            )
                        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, condition: Callable[[list[Span]], bool], timeout: float = 15.0) -> list[Span]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                spans = list(self.spans)
            if condition(spans):
                return spans
            time.sleep(0.05)
        raise AssertionError(f"spans not received in time; got {[s.name for s in self.spans]}")

    def tree(self, trace_id: str) -> list[Span]:
        """The roots of one trace, each with its children (by start time)."""
        with self._lock:
            spans = [
                Span(**{k: v for k, v in vars(s).items() if k != "children"})
                for s in self.spans
                if s.trace_id == trace_id
            ]
        by_id = {s.span_id: s for s in spans}
        roots = []
        for span in sorted(spans, key=lambda s: s.start_ns):
            parent = by_id.get(span.parent_id)
            (parent.children if parent is not None else roots).append(span)
        return roots


def render(roots: list[Span], keys: tuple[str, ...] = ()) -> str:
    """An indented text tree: name, duration and the chosen attributes of each span."""
    lines: list[str] = []

    def walk(span: Span, depth: int) -> None:
        shown = {k: span.attributes[k] for k in keys if k in span.attributes}
        extra = " " + " ".join(f"{k}={v}" for k, v in shown.items()) if shown else ""
        lines.append(f"{'  ' * depth}{span.name} ({span.ms:.1f} ms){extra}")
        for child in span.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return "\n".join(lines)
