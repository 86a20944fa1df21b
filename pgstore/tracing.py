"""OpenTelemetry spans (with `pgstore[otel]`): one trace from a writer through its handlers.

Appends, handler runs and dispatch batches become spans, with the message's id, type,
stream, correlation and causation as attributes. The trace context travels in each
message's metadata (`traceparent`, W3C): an append records the current one, a handler
run continues the one its message carries, so the events a handler raises join the
writer's trace. Without OpenTelemetry installed, or with no tracer provider set, every
call here does nothing and costs almost nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _propagator: Any = TraceContextTextMapPropagator()
    _tracer: Any = trace.get_tracer("pgstore")
except ImportError:  # the `otel` extra is not installed
    trace = None  # type: ignore[assignment]
    _propagator = None


@contextmanager
def span(name: str, attributes: dict[str, Any] | None = None) -> Iterator[None]:
    """A span, child of the current one."""
    if trace is None:
        yield
        return
    with _tracer.start_as_current_span(name, attributes=_clean(attributes)):
        yield


@contextmanager
def continued(
    name: str, metadata: dict[str, Any] | None, attributes: dict[str, Any]
) -> Iterator[None]:
    """A span continuing the trace a message's metadata carries (else a new trace)."""
    if trace is None:
        yield
        return
    carrier = (
        {"traceparent": metadata["traceparent"]} if metadata and metadata.get("traceparent") else {}
    )
    parent = _propagator.extract(carrier)
    token = otel_context.attach(parent)
    try:
        with _tracer.start_as_current_span(name, attributes=_clean(attributes)):
            yield
    finally:
        otel_context.detach(token)


def traceparent() -> str | None:
    """The current trace context as a W3C traceparent, to store in a message."""
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def _clean(attributes: dict[str, Any] | None) -> dict[str, Any]:
    return {k: str(v) for k, v in (attributes or {}).items() if v is not None}
