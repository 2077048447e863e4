"""Prometheus metrics for the people who run the collector: the proxy's ``GET /metrics``, and
the same for an app that uses the wrapper.

Counters and gauges are read from :meth:`ShadowCollector.stats` (and the log writer's upload
state) at each scrape, so they never drift from what ``/healthz`` says. The two latency
histograms are fed with every record the collector writes (a listener on its log writer).

In an app that uses the wrapper::

    from shadowtutor.collect import metrics
    metrics.start_http_server(collector, port=9464)      # its own /metrics port, or
    text = metrics.for_collector(collector).render()      # bytes for your web framework's route
    metrics.for_collector(collector, registry=prometheus_client.REGISTRY)  # join your registry

Metric names (all prefixed ``shadowtutor_``):

- ``requests_total{decision}``: requests seen by the collector, by decision
  (``shadowed``, ``dropped`` (queue full), ``not_sampled``, ``ineligible``)
- ``records_logged_total``, ``records_lost_total``, ``log_write_errors_total``
- ``student_outcomes_total{outcome}``: ``ok``, ``error``, ``timeout``, ``breaker_skipped``
- ``teacher_errors_total``, ``served_by_student_total``, ``student_fallbacks_total``
- ``teacher_only_total{reason}``: requests routed to the student that the teacher answered,
  by reason (``kind: tools``, ``kind: json_schema``...: the student serves plain requests only)
- ``forwarded_total{path}``: requests the proxy passed to the teacher without shadowing them
  (embeddings, completions, model details, any path it does not shadow), by path (ids shown as
  ``{id}``)
- ``teacher_latency_seconds``, ``student_latency_seconds``: histograms (the student's only
  for answers it gave)
- ``queue_depth``, ``queue_size``, ``unwritten_records``: gauges
- ``breaker_state{state}``: 1 for the current state (``closed``, ``open``, ``half-open``);
  ``breaker_opened_total``
- ``feedback_events_total{outcome}``: feedback taken (``accepted``; ``unknown_id`` of those
  for an id this process did not answer) or not (``duplicate``, ``malformed``,
  ``write_failed``, ``untrusted``)
- ``log_upload_lag_seconds``: age of the oldest record not yet in the bucket (0 for a folder);
  ``log_parts_pending``, ``log_uploaded_parts_total``, ``log_upload_errors_total``
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "shadowtutor_"
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BREAKER_STATES = ("closed", "open", "half-open")
FEEDBACK_OUTCOMES = (
    "accepted",
    "duplicate",
    "malformed",
    "unknown_id",
    "write_failed",
    "untrusted",
)


class _StatsCollector(Collector):
    """Turns one ``stats()`` snapshot into metric families at scrape time."""

    def __init__(self, collector: Any):
        self._collector = weakref.ref(collector)

    def collect(self) -> Iterator[Metric]:
        collector = self._collector()
        if collector is None:
            return
        s = collector.stats()
        writer = collector.writer
        up = writer.stats() if hasattr(writer, "stats") else {}  # a bucket's uploads

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, doc, value=float(value))

        requests = CounterMetricFamily(
            PREFIX + "requests", "Requests seen by the collector, by decision.", labels=["decision"]
        )
        for decision, key in (
            ("shadowed", "enqueued"),
            ("dropped", "dropped"),
            ("not_sampled", "not_sampled"),
            ("ineligible", "ineligible"),
        ):
            requests.add_metric([decision], float(s.get(key, 0)))
        yield requests
        outcomes = CounterMetricFamily(
            PREFIX + "student_outcomes", "Student answers by outcome.", labels=["outcome"]
        )
        timeouts = s.get("student_timeouts", 0)
        outcomes.add_metric(["ok"], float(s.get("student_ok", 0)))
        outcomes.add_metric(["error"], float(max(0, s.get("student_errors", 0) - timeouts)))
        outcomes.add_metric(["timeout"], float(timeouts))
        outcomes.add_metric(["breaker_skipped"], float(s.get("breaker_skipped", 0)))
        yield outcomes
        yield counter("records_logged", "Records written to the shadow log.", s.get("logged", 0))
        yield counter("records_lost", "Records lost (worker failure, overflow).", s.get("lost", 0))
        yield counter("log_write_errors", "Failed writes to the log.", s.get("write_errors", 0))
        yield counter(
            "teacher_errors", "Teacher answers that could not be read.", s.get("teacher_errors", 0)
        )
        yield counter(
            "similarity_errors",
            "Similarity computations that failed.",
            s.get("similarity_errors", 0),
        )
        yield counter(
            "served_by_student",
            "Requests the student answered for the user.",
            s.get("served_by_student", 0),
        )
        yield counter(
            "student_fallbacks",
            "Student-served requests that fell back.",
            s.get("student_fallbacks", 0),
        )
        held = CounterMetricFamily(
            PREFIX + "teacher_only",
            "Requests routed to the student that the teacher answered, by reason.",
            labels=["reason"],
        )
        for reason, n in sorted((s.get("teacher_only_by_reason") or {}).items()):
            held.add_metric([reason], float(n))
        yield held
        forwarded = CounterMetricFamily(
            PREFIX + "forwarded",
            "Requests the proxy passed to the teacher unshadowed (paths it does not shadow).",
            labels=["path"],
        )
        for path, n in sorted((s.get("forwarded_by_path") or {}).items()):
            forwarded.add_metric([path], float(n))
        yield forwarded
        yield counter(
            "breaker_opened", "Times the circuit breaker opened.", s.get("breaker_opened", 0)
        )
        yield GaugeMetricFamily(PREFIX + "queue_depth", "Jobs waiting.", value=s["queue_depth"])
        yield GaugeMetricFamily(PREFIX + "queue_size", "Queue bound.", value=s["queue_size"])
        yield GaugeMetricFamily(
            PREFIX + "unwritten_records", "Records waiting for the writer.", value=s["unwritten"]
        )
        breaker = GaugeMetricFamily(
            PREFIX + "breaker_state", "1 for the breaker's current state.", labels=["state"]
        )
        for state in BREAKER_STATES:
            breaker.add_metric([state], 1.0 if s.get("breaker") == state else 0.0)
        yield breaker
        yield GaugeMetricFamily(
            PREFIX + "log_upload_lag_seconds",
            "Age of the oldest record not yet uploaded to the log bucket (0: none, or a folder).",
            value=float(up.get("upload_lag_s", 0.0)),
        )
        yield GaugeMetricFamily(
            PREFIX + "log_parts_pending",
            "Spooled log parts not yet confirmed in the bucket.",
            value=float(up.get("parts_pending", 0)),
        )
        yield counter("log_uploaded_parts", "Log parts uploaded.", up.get("uploaded_parts", 0))
        yield counter("log_upload_errors", "Failed log part uploads.", up.get("upload_errors", 0))
        feedback = CounterMetricFamily(
            PREFIX + "feedback_events",
            "Feedback events by outcome (accepted, duplicate, malformed, unknown_id: accepted "
            "for an id this process did not answer, write_failed, untrusted).",
            labels=["outcome"],
        )
        fb = s.get("feedback") or {}
        for outcome in FEEDBACK_OUTCOMES:
            feedback.add_metric([outcome], float(fb.get(outcome, 0)))
        yield feedback


class CollectorMetrics:
    """The metrics of one collector in a registry (its own unless one is given)."""

    def __init__(self, collector: Any, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.teacher_latency = Histogram(
            PREFIX + "teacher_latency_seconds",
            "Teacher answer latency (as recorded).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.student_latency = Histogram(
            PREFIX + "student_latency_seconds",
            "Student answer latency, answers it gave.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StatsCollector(collector))
        collector.writer.listeners.append(self.observe)

    def observe(self, records: list[dict[str, Any]]) -> None:
        for rec in records:
            teacher = rec.get("teacher") or {}
            if teacher.get("latency_ms") is not None:
                self.teacher_latency.observe(teacher["latency_ms"] / 1000.0)
            student = rec.get("student") or {}
            if student.get("latency_ms") is not None and student.get("error") is None:
                self.student_latency.observe(student["latency_ms"] / 1000.0)

    def render(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)


_BY_COLLECTOR: weakref.WeakKeyDictionary[Any, CollectorMetrics] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def for_collector(collector: Any, registry: CollectorRegistry | None = None) -> CollectorMetrics:
    """The collector's metrics, created once (later calls return the same object)."""
    with _LOCK:
        found = _BY_COLLECTOR.get(collector)
        if found is None:
            found = _BY_COLLECTOR[collector] = CollectorMetrics(collector, registry)
        return found


def endpoint(collector: Any) -> Any:
    """A Starlette endpoint serving the collector's metrics (the proxy's ``GET /metrics``)."""
    from starlette.responses import Response

    metrics = for_collector(collector)

    async def serve_metrics(request: Any) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return serve_metrics


def start_http_server(collector: Any, port: int, addr: str = "127.0.0.1") -> Any:
    """Serve the collector's metrics on ``http://addr:port/metrics`` from a daemon thread (for
    apps that use the wrapper and have no web server of their own to add a route to)."""
    import prometheus_client

    return prometheus_client.start_http_server(
        port, addr=addr, registry=for_collector(collector).registry
    )
