"""OpenTelemetry behind the :class:`~fathom.telemetry.Telemetry` seam (the ``otel`` extra).

Imported only with ``tracing`` on. Spans go through a batch processor to an OTLP/HTTP
(protobuf) exporter; where they go and how they are sampled is configured by the standard
``OTEL_*`` variables, which the OpenTelemetry SDK reads itself (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*`` ...). Each
:class:`~fathom.Fathom` has its own tracer provider; nothing is set globally. Incoming
``traceparent`` headers (W3C Trace Context) are honoured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fathom import __version__
from fathom.errors import ConfigError

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised by test_tracing's missing-extra test
    _MISSING = True
else:
    _MISSING = False

__all__ = ["Tracing"]

_KINDS = {"internal": "INTERNAL", "server": "SERVER", "client": "CLIENT"}


class Tracing:
    """A tracer provider exporting over OTLP/HTTP, and the few calls the seam needs.

    Raises:
        ConfigError: the ``otel`` extra is not installed (``config.tracing_unavailable``).
    """

    def __init__(self) -> None:
        if _MISSING:
            raise ConfigError(
                "tracing is on but OpenTelemetry is not installed: pip install 'fathom-search[otel]'",
                code="config.tracing_unavailable",
            )
        resource = Resource.create({SERVICE_VERSION: __version__})
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: "fathom"}))
        self._provider = TracerProvider(resource=resource)
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self._tracer = self._provider.get_tracer("fathom", __version__)
        self._propagator = TraceContextTextMapPropagator()

    def start(
        self,
        name: str,
        kind: str,
        attributes: Mapping[str, Any],
        *,
        traceparent: str | None = None,
        parent: Any = None,
        start_time: int | None = None,
    ) -> Any:
        """A started span, child of ``parent`` (a span), else of ``traceparent``, else of the
        current span."""
        if parent is not None:
            context = trace.set_span_in_context(parent)
        elif traceparent is not None:
            context = self._propagator.extract({"traceparent": traceparent})
        else:
            context = None
        return self._tracer.start_span(
            name,
            context=context,
            kind=getattr(SpanKind, _KINDS.get(kind, "INTERNAL")),
            attributes=dict(attributes),
            start_time=start_time,
        )

    def record(
        self, name: str, attributes: Mapping[str, Any], start_ns: int, end_ns: int, *, parent: Any = None
    ) -> None:
        span = self.start(name, "internal", attributes, parent=parent, start_time=start_ns)
        span.end(end_time=end_ns)

    def attach(self, span: Any) -> object:
        return otel_context.attach(trace.set_span_in_context(span))

    def detach(self, token: Any) -> None:
        otel_context.detach(token)

    def failed(self, span: Any, code: str) -> None:
        span.set_status(Status(StatusCode.ERROR, code))

    def traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return carrier.get("traceparent")

    def shutdown(self) -> None:
        self._provider.shutdown()
