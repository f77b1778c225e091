"""Prometheus metrics of one serve process (each app has its own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Request latency per route, pipeline stage latency, errors, jobs and rate limiting."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "fathom_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stages = Histogram(
            "fathom_stage_duration_seconds",
            "Latency of query pipeline stages (lexical, dense, retrieve, answer).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "fathom_errors_total", "Error responses by error code.", ["code"], registry=self.registry
        )
        self.jobs = Counter(
            "fathom_jobs_finished_total",
            "Ingestion jobs this process finished, by final status.",
            ["status"],
            registry=self.registry,
        )
        self.jobs_enqueued = Counter(
            "fathom_jobs_enqueued_total",
            "Ingestion jobs queued through this process.",
            registry=self.registry,
        )
        self.jobs_by_status = Gauge(
            "fathom_jobs_in_store",
            "Jobs in the store of record by status.",
            ["status"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "fathom_rate_limited_total",
            "Requests refused by a rate limit, by bucket.",
            ["bucket"],
            registry=self.registry,
        )
        self.idempotent_replays = Counter(
            "fathom_idempotent_replays_total",
            "Uploads answered from an earlier request with the same Idempotency-Key.",
            registry=self.registry,
        )

        self.oidc_fetches = Counter(
            "fathom_oidc_fetches_total",
            "Fetches of the OpenID Provider's discovery document and keys, by document and outcome.",
            ["document", "outcome"],
            registry=self.registry,
        )

    def observe_oidc_fetch(self, document: str, outcome: str) -> None:
        self.oidc_fetches.labels(document=document, outcome=outcome).inc()

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stages.labels(stage=stage).observe(seconds)

    def observe_job(self, status: str, _error_code: str | None) -> None:
        self.jobs.labels(status=status).inc()

    def render(self, job_counts: dict[str, int]) -> bytes:
        """The exposition text, with job counts read from the store just now."""
        for status in ("queued", "running", "succeeded", "failed"):
            self.jobs_by_status.labels(status=status).set(job_counts.get(status, 0))
        return generate_latest(self.registry)
