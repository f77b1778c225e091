"""One instrumentation seam for the stages of a request: timings for metrics, spans for traces.

Every stage (auth, search, transform, retrieve and its parts, answer, generation, verification,
the ingest steps) goes through a :class:`Telemetry`: its duration and attributes go to the
sinks (the Prometheus metrics of a serve process) and, with ``tracing`` on, it becomes an
OpenTelemetry span (:mod:`fathom.tracing`, imported only then). Without tracing a stage costs
two clock reads and a call per sink.

Spans carry names, ids, counts, models, tokens and costs; never document text, questions,
prompts or keys.

Stages that run inside a generator (answers stream) must not leave their span "current"
across a ``yield``: the consumer may resume the generator on another thread. :meth:`stream`
makes a span current only while the generator runs, for each item; :meth:`start` gives a span
that is never current (ended by hand).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fathom.errors import FathomError

if TYPE_CHECKING:
    from fathom.config import Settings
    from fathom.tracing import Tracing

__all__ = ["Attribute", "Stage", "StageCallback", "Telemetry", "TelemetrySink"]

Attribute = str | bool | int | float
T = TypeVar("T")


class TelemetrySink(Protocol):
    """Receives every finished stage and every counted event (e.g. the Prometheus metrics)."""

    def stage_finished(self, name: str, seconds: float, attributes: Mapping[str, Attribute]) -> None: ...

    def counted(self, name: str, labels: Mapping[str, str]) -> None: ...


class StageCallback:
    """A sink that forwards stage durations to a ``(stage, seconds)`` callback, looked up on
    every stage (``Fathom.stage_observer``)."""

    def __init__(self, callback: Callable[[], Callable[[str, float], None] | None]) -> None:
        self._callback = callback

    def stage_finished(self, name: str, seconds: float, attributes: Mapping[str, Attribute]) -> None:
        observer = self._callback()
        if observer is not None:
            observer(name, seconds)

    def counted(self, name: str, labels: Mapping[str, str]) -> None:
        return None


class Stage:
    """A stage in progress: attributes can be added until it ends; ending it twice is harmless."""

    __slots__ = ("_ended", "_span", "_started", "_telemetry", "attributes", "name")

    def __init__(self, telemetry: Telemetry, name: str, span: Any, attributes: dict[str, Attribute]) -> None:
        self._telemetry = telemetry
        self.name = name
        self._span = span
        self.attributes = attributes
        self._started = time.perf_counter()
        self._ended = False

    @property
    def span(self) -> Any:
        """The OpenTelemetry span, or None without tracing."""
        return self._span

    def set(self, **attributes: Attribute | None) -> None:
        """Add attributes (None values are left out). Dotted names: pass a dict with ``**``."""
        kept = {k: v for k, v in attributes.items() if v is not None}
        self.attributes.update(kept)
        if self._span is not None and kept:
            self._span.set_attributes(kept)

    def fail(self, code: str) -> None:
        """Mark the stage failed with a stable error code."""
        self.set(**{"fathom.error_code": code})
        if self._span is not None:
            self._telemetry.tracing_failed(self._span, code)

    def part(self, name: str, seconds: float, start_offset: float) -> None:
        """A sub-stage timed elsewhere (e.g. inside the search backend), as a child span placed
        ``start_offset`` seconds after this stage began."""
        self._telemetry.record(name, seconds, parent=self, start_offset=start_offset)

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        seconds = time.perf_counter() - self._started
        if self._span is not None:
            self._span.end()
        self._telemetry.finished(self.name, seconds, self.attributes)


class Telemetry:
    """The seam (see the module docstring). ``Telemetry()`` records to sinks only."""

    def __init__(self, tracing: Tracing | None = None) -> None:
        self._tracing = tracing
        self._sinks: list[TelemetrySink] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> Telemetry:
        """Telemetry with OpenTelemetry tracing when ``settings.tracing`` is on.

        Raises:
            ConfigError: tracing is on but the ``otel`` extra is not installed.
        """
        if not settings.tracing:
            return cls()
        from fathom.tracing import Tracing

        return cls(Tracing())

    @property
    def tracing(self) -> bool:
        return self._tracing is not None

    def add_sink(self, sink: TelemetrySink) -> None:
        if all(existing is not sink for existing in self._sinks):
            self._sinks.append(sink)

    def remove_sink(self, sink: TelemetrySink) -> None:
        self._sinks = [existing for existing in self._sinks if existing is not sink]

    def close(self) -> None:
        """Export what is buffered and stop exporting."""
        if self._tracing is not None:
            self._tracing.shutdown()

    # -- stages ------------------------------------------------------------------------------

    def start(
        self, name: str, *, parent: str | Stage | None = None, kind: str = "internal", **attributes: Attribute
    ) -> Stage:
        """A stage whose span is never current; end it with :meth:`Stage.end`.

        ``parent``: a W3C ``traceparent`` value (a request or a queued job), a stage, or None
        for the current span.
        """
        return self._begin(name, parent, kind, attributes)

    def _begin(
        self, name: str, parent: str | Stage | None, kind: str, attributes: Mapping[str, Attribute]
    ) -> Stage:
        span = None
        if self._tracing is not None:
            parent_span = parent.span if isinstance(parent, Stage) else None
            traceparent = parent if isinstance(parent, str) else None
            span = self._tracing.start(name, kind, attributes, traceparent=traceparent, parent=parent_span)
        return Stage(self, name, span, dict(attributes))

    @contextmanager
    def stage(
        self, name: str, *, parent: str | None = None, kind: str = "internal", **attributes: Attribute
    ) -> Iterator[Stage]:
        """A stage around a block (the block must not ``yield`` out of a generator)."""
        stage = self.start(name, parent=parent, kind=kind, **attributes)
        token = self._tracing.attach(stage.span) if self._tracing is not None else None
        try:
            yield stage
        except FathomError as exc:
            stage.fail(exc.code)
            raise
        except BaseException as exc:
            stage.fail("internal.error" if isinstance(exc, Exception) else "cancelled")
            raise
        finally:
            if token is not None and self._tracing is not None:
                self._tracing.detach(token)
            stage.end()

    def stream(
        self,
        name: str,
        items: Iterable[T],
        *,
        on_item: Callable[[Stage, T], None] | None = None,
        **attributes: Attribute,
    ) -> Iterator[T]:
        """``items`` inside a stage that starts now and ends when they are exhausted or closed;
        the stage's span is current while ``items`` produces each one (so stages inside are its
        children) and never across a ``yield``."""
        stage = self._begin(name, None, "internal", attributes)
        return self._streamed(stage, iter(items), on_item)

    def _streamed(
        self, stage: Stage, items: Iterator[T], on_item: Callable[[Stage, T], None] | None
    ) -> Iterator[T]:
        try:
            while True:
                token = self._tracing.attach(stage.span) if self._tracing is not None else None
                try:
                    item = next(items)
                except StopIteration:
                    return
                except FathomError as exc:
                    stage.fail(exc.code)
                    raise
                except Exception:
                    stage.fail("internal.error")
                    raise
                finally:
                    if token is not None and self._tracing is not None:
                        self._tracing.detach(token)
                if on_item is not None:
                    on_item(stage, item)
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            stage.end()

    def record(
        self,
        name: str,
        seconds: float,
        *,
        parent: Stage | None = None,
        start_offset: float | None = None,
        **attributes: Attribute,
    ) -> None:
        """A stage timed elsewhere: its duration to the sinks and, with tracing, a span of that
        length (``start_offset`` seconds after ``parent`` began, else ending now)."""
        if self._tracing is not None:
            now = time.time_ns()
            if parent is not None and start_offset is not None:
                begun = now - int((time.perf_counter() - parent._started) * 1e9)
                start = begun + int(start_offset * 1e9)
            else:
                start = now - int(seconds * 1e9)
            self._tracing.record(
                name, attributes, start, start + int(seconds * 1e9), parent=parent.span if parent else None
            )
        self.finished(name, seconds, attributes)

    def count(self, name: str, **labels: str) -> None:
        """An event for the sinks' counters (e.g. ``count("cache", cache="answer", result="hit")``)."""
        for sink in self._sinks:
            sink.counted(name, labels)

    def traceparent(self) -> str | None:
        """The current span as a W3C ``traceparent`` value (to continue the trace later, e.g.
        in the job that ingests an upload); None without tracing or without a span."""
        return self._tracing.traceparent() if self._tracing is not None else None

    # -- for Stage -----------------------------------------------------------------------------

    def finished(self, name: str, seconds: float, attributes: Mapping[str, Attribute]) -> None:
        for sink in self._sinks:
            sink.stage_finished(name, seconds, attributes)

    def tracing_failed(self, span: Any, code: str) -> None:
        if self._tracing is not None:
            self._tracing.failed(span, code)
