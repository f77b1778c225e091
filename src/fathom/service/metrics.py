"""Prometheus metrics of one serve process (each app has its own registry)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fathom.telemetry import Attribute

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Request latency per route, pipeline stage latency, errors, jobs, rate limiting, LLM calls,
    caches and webhook deliveries.

    It is a sink of the fathom's :class:`~fathom.telemetry.Telemetry`: every stage's duration,
    and the tokens and cost of every LLM call, come from there.
    """

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
            "Latency of request stages (auth, search, retrieve, lexical, dense, fusion, answer, "
            "generation, verification, ingest ...).",
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
        self.llm_requests = Histogram(
            "fathom_llm_request_duration_seconds",
            "Latency of LLM calls (answers and query transforms) by model and outcome (ok or an error code).",
            ["model", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.llm_tokens = Counter(
            "fathom_llm_tokens_total",
            "LLM tokens by model and direction (in: prompt, out: completion).",
            ["model", "direction"],
            registry=self.registry,
        )
        self.llm_cost = Counter(
            "fathom_llm_cost_usd_total",
            "Cost of LLM calls in USD, by model (models with a price in llm_prices).",
            ["model"],
            registry=self.registry,
        )
        self.cache = Counter(
            "fathom_cache_requests_total",
            "Cache lookups by cache (answer) and result (hit, miss).",
            ["cache", "result"],
            registry=self.registry,
        )
        self.query_batches = Histogram(
            "fathom_query_embedding_batch_size",
            "Queries embedded together in one forward pass of the model.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "fathom_webhook_deliveries_total",
            "Webhook delivery attempts by outcome (delivered, failed) and deliveries dead-lettered (dead).",
            ["outcome"],
            registry=self.registry,
        )

        self.replica_reads = Counter(
            "fathom_replica_reads_total",
            "Search reads with database_replica_urls set, by where they ran (replica, primary).",
            ["target"],
            registry=self.registry,
        )
        self.replica_fallbacks = Counter(
            "fathom_replica_fallbacks_total",
            "Replicas passed over for a read, by reason (down: connection failed; behind: lagging).",
            ["reason"],
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

    def stage_finished(self, name: str, seconds: float, attributes: Mapping[str, Attribute]) -> None:
        self.stages.labels(stage=name).observe(seconds)
        if name != "generation":
            return
        model = str(attributes.get("gen_ai.request.model", "unknown"))
        outcome = str(attributes.get("fathom.error_code", "ok"))
        self.llm_requests.labels(model=model, outcome=outcome).observe(seconds)
        self.llm_tokens.labels(model=model, direction="in").inc(
            int(attributes.get("gen_ai.usage.input_tokens", 0))
        )
        self.llm_tokens.labels(model=model, direction="out").inc(
            int(attributes.get("gen_ai.usage.output_tokens", 0))
        )
        cost = attributes.get("fathom.llm.cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self.llm_cost.labels(model=model).inc(float(cost))

    def counted(self, name: str, labels: Mapping[str, str]) -> None:
        if name == "cache":
            self.cache.labels(cache=labels.get("cache", ""), result=labels.get("result", "")).inc()
        elif name == "replica_read":
            self.replica_reads.labels(target=labels.get("target", "")).inc()
        elif name == "replica_fallback":
            self.replica_fallbacks.labels(reason=labels.get("reason", "")).inc()

    def observe_delivery(self, outcome: str) -> None:
        self.webhook_deliveries.labels(outcome=outcome).inc()

    def observe_query_batch(self, queries: int) -> None:
        self.query_batches.observe(queries)

    def observe_job(self, status: str, _error_code: str | None) -> None:
        self.jobs.labels(status=status).inc()

    def render(self, job_counts: dict[str, int]) -> bytes:
        """The exposition text, with job counts read from the store just now."""
        for status in ("queued", "running", "succeeded", "failed"):
            self.jobs_by_status.labels(status=status).set(job_counts.get(status, 0))
        return generate_latest(self.registry)
