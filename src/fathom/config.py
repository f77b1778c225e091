"""One typed settings object for all of fathom.

Settings come from, highest priority first: arguments passed in code (or CLI
flags), environment variables ``FATHOM_<NAME>``, the settings file
``$FATHOM_HOME/fathom.toml``, and the defaults below. Nothing else in fathom
reads the environment.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fathom.errors import ConfigError

__all__ = ["DEFAULT_EMBEDDER", "Settings", "default_home", "load_settings", "oidc_url_problem"]

DEFAULT_EMBEDDER = "sentence-transformers:all-MiniLM-L6-v2"
SETTINGS_FILE = "fathom.toml"
# Token signature algorithms single sign-on may accept: asymmetric ones only (never none or HS*).
SignatureAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
DEFAULT_SIGNATURE_ALGORITHMS: tuple[SignatureAlgorithm, ...] = ("RS256", "PS256", "ES256")


def default_home() -> Path:
    """Where fathom keeps its data when neither ``--home`` nor ``FATHOM_HOME`` is given.

    ``$XDG_DATA_HOME/fathom``, which is ``~/.local/share/fathom`` on most systems.
    """
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "fathom"


def oidc_url_problem(url: str, *, allow_http_loopback: bool) -> str | None:
    """Why ``url`` may not be fetched for OIDC (issuer, discovery, keys), or None when it may.

    https only; http only on a loopback host, and only when ``allow_http_loopback`` is set.
    """
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password or parts.fragment or parts.query:
        return "must be an absolute URL with a host and no credentials, query or fragment"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_http_loopback and _is_loopback(parts.hostname):
        return None
    if parts.scheme == "http":
        return "must use https (http only on a loopback host with oidc_allow_http_loopback)"
    return "must be an https URL"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_provider_spec(spec: str) -> bool:
    from fathom.llm.base import parse_provider_spec  # late: fathom.llm imports this module's types

    try:
        parse_provider_spec(spec)
    except ConfigError:
        return False
    return True


class Settings(BaseSettings):
    """Every setting fathom has. Each is documented in ``docs/configuration.md``."""

    model_config = SettingsConfigDict(env_prefix="FATHOM_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=default_home, description="Folder holding the store and indexes.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store of record; default: SQLite at HOME/fathom.db.",
    )
    tenant: str = Field(default="default", description="Tenant used by the embedded CLI and Python API.")
    embedder: str = Field(
        default=DEFAULT_EMBEDDER,
        description="Embedding model: 'sentence-transformers:NAME_OR_PATH' or 'hash:DIM' (tests only).",
    )
    query_precision: Literal["float32", "int8"] = Field(
        default="int8",
        description="Precision of the model that embeds queries on CPU: 'int8' is about twice as fast "
        "as 'float32' and as good on SciFact; document vectors are always float32.",
    )
    device: str = Field(default="cpu", description="Torch device for models: 'cpu', 'cuda', 'auto'.")
    embed_batch_size: int = Field(default=64, ge=1, le=4096, description="Chunks per embedding batch.")
    chunk_tokens: int = Field(default=160, ge=16, le=2048, description="Target chunk size in model tokens.")
    chunk_overlap: int = Field(default=32, ge=0, le=512, description="Tokens repeated between chunks.")
    fusion: Literal["rrf", "zscore", "weighted"] = Field(
        default="zscore",
        description="How lexical and dense results are fused: reciprocal ranks, z-normalised scores "
        "(plus a rank term, see fusion_rank_weight), or min-max normalised scores.",
    )
    dense_min_spread: float = Field(
        default=0.04,
        ge=0,
        description="z-score fusion divides the dense list's cosine scores by at least this spread.",
    )
    fusion_rank_weight: float = Field(
        default=1.0,
        ge=0,
        description="z-score fusion adds this weight times k/(k + rank) per list, so a passage both "
        "lists rank fairly high is lifted; 0 gives plain z-score fusion.",
    )
    rrf_k: int = Field(
        default=60, ge=1, description="The k constant of reciprocal rank fusion and of the z-score rank term."
    )
    lexical_weight: float = Field(default=1.0, ge=0, description="Weight of the BM25 list in fusion.")
    dense_weight: float = Field(default=1.0, ge=0, description="Weight of the dense list in fusion.")
    candidates: int = Field(default=50, ge=1, le=1000, description="Candidates each retriever returns.")
    reranker: str | None = Field(
        default=None,
        description="Cross-encoder that rescores the best fused candidates, e.g. "
        "'cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2' (a name in the local model cache or a "
        "folder); off when unset.",
    )
    rerank_depth: int = Field(
        default=30, ge=1, le=1000, description="Fused candidates the reranker rescores."
    )
    index_backend: Literal["embedded", "postgres"] = Field(
        default="embedded",
        description="Search backend: 'embedded' (tantivy + usearch files under HOME/index, one pair "
        "per tenant) or 'postgres' (pgvector HNSW and BM25 in the PostgreSQL database_url, written in "
        "the store's own transactions: serving nodes hold no index files).",
    )
    postgres_ef_search: int = Field(
        default=100,
        ge=10,
        le=1000,
        description="postgres backend: HNSW candidate list size of a dense search (at least the "
        "candidate depth is used).",
    )
    postgres_hnsw_m: int = Field(
        default=16,
        ge=4,
        le=100,
        description="postgres backend: HNSW links per vector (changing it rebuilds the search tables).",
    )
    postgres_hnsw_ef_construction: int = Field(
        default=64,
        ge=16,
        le=1000,
        description="postgres backend: HNSW candidate list size while building (changing it rebuilds "
        "the search tables).",
    )
    # Read replicas (fathom.store.replicas): searches on streaming replicas, writes on the primary.
    database_replica_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SQLAlchemy URLs of streaming replicas of the PostgreSQL database_url, "
        "comma-separated in the environment: searches and the chunk reads that follow them go to a "
        "healthy, current replica; everything else to the primary (needs index_backend 'postgres').",
    )
    database_replica_max_lag_ms: float = Field(
        default=1000.0,
        ge=0,
        description="A replica further behind its primary than this (replay lag) is skipped and the "
        "read goes to the next replica or the primary.",
    )
    database_replica_retry_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How long a replica whose connection failed is left out before it is tried again.",
    )
    exact_search_below: int = Field(
        default=50_000, ge=0, description="Dense search is exact (brute force) below this many chunks."
    )
    dense_journal_limit: int = Field(
        default=20_000,
        ge=1,
        description="Vectors added or removed since the last dense snapshot before they are merged into it.",
    )
    index_threads: int = Field(
        default=2,
        ge=1,
        le=256,
        description="Threads that merge journaled vectors into the dense HNSW graph.",
    )
    lexical_context: bool = Field(
        default=True,
        description="Index each chunk's document title and heading path in the same BM25 field as its "
        "text (changing it rebuilds the lexical index on next open).",
    )
    title_boost: float = Field(
        default=0.0,
        ge=0,
        description="Extra BM25 weight of the title field (title words already count in the chunk text).",
    )
    heading_boost: float = Field(
        default=0.0,
        ge=0,
        description="Extra BM25 weight of the heading-path field (headings already count in the chunk text).",
    )
    max_file_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1, description="Files larger than this are refused at ingest."
    )
    parser_workers: int = Field(
        default=2, ge=1, le=64, description="Parser worker processes (each with the limits below)."
    )
    parser_cpu_seconds: int = Field(
        default=30, ge=1, description="CPU seconds a parser may spend on one file."
    )
    parser_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a parser may spend on one file (its own time: not waiting for a CPU).",
    )
    parser_memory_mb: int = Field(
        default=1024,
        ge=384,
        description="Address-space limit of a parser worker process, in MiB (a worker starts at ~240).",
    )
    ocr: Literal["off", "auto"] = Field(
        default="off",
        description="OCR of PDF pages without a text layer: `off` (they fail as no_text) or `auto` "
        "(rendered and read by tesseract; needs the `ocr` extra and the tesseract binary).",
    )
    ocr_command: str = Field(
        default="tesseract", min_length=1, description="The tesseract binary (a name on PATH or a path)."
    )
    ocr_language: str = Field(
        default="eng",
        pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$",
        description="Tesseract language(s), e.g. `eng` or `eng+deu` (their traineddata must be installed).",
    )
    ocr_dpi: int = Field(
        default=300, ge=72, le=600, description="Resolution at which a page is rendered for OCR."
    )
    ocr_max_pages: int = Field(
        default=100,
        ge=1,
        description="Most pages of one PDF that may need OCR; "
        "a PDF with more fails with ingest.ocr_too_many_pages.",
    )
    archive_max_entries: int = Field(
        default=10_000, ge=1, description="Most entries a DOCX/XLSX/PPTX archive may hold."
    )
    archive_max_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1, description="Most bytes a DOCX/XLSX/PPTX may decompress to."
    )
    archive_max_ratio: float = Field(
        default=100.0, gt=1, description="Highest compression ratio allowed in a DOCX/XLSX/PPTX archive."
    )
    json_text_fields: list[str] = Field(
        default_factory=lambda: ["text", "body", "content", "abstract", "description", "summary"],
        description="Fields of JSON/JSONL records that hold their text.",
    )
    json_title_field: str = Field(
        default="title", description="Field of JSON/JSONL records that holds a title."
    )
    near_duplicate_threshold: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Estimated Jaccard similarity at which texts count as near-duplicates (0 turns it off).",
    )
    url_allow: list[str] = Field(
        default_factory=list,
        description="Hosts or networks (CIDR) URL ingestion may reach even if private or loopback.",
    )
    url_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, description="Largest response URL ingestion downloads, in bytes."
    )
    url_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        description="Total time to fetch one URL: one deadline over DNS, connect, redirects and body.",
    )
    url_max_redirects: int = Field(default=5, ge=0, le=20, description="Redirects URL ingestion follows.")
    sync_debounce_ms: int = Field(
        default=800, ge=0, description="Quiet time before `sync --watch` applies a burst of changes."
    )
    max_query_chars: int = Field(default=2000, ge=1, description="Longer queries are refused.")
    answer_chunks: int = Field(default=6, ge=1, le=50, description="Top chunks the answerer reads.")
    answer_sentences: int = Field(default=3, ge=1, le=20, description="Most sentences in an answer.")
    min_support: float = Field(
        default=0.45,
        ge=0,
        le=1,
        description="Support score below which the answerer abstains instead of answering.",
    )
    llm: str = Field(
        default="extractive",
        description="Answerer: 'extractive' (no LLM), 'openai:MODEL' for an OpenAI-compatible endpoint, "
        "or 'gguf:gemma3-270m' / 'gguf:/path/model.gguf' for a local model (the gguf extra).",
    )
    llm_base_url: str = Field(
        default="https://api.openai.com/v1", description="Base URL of the OpenAI-compatible endpoint."
    )
    llm_api_key: SecretStr | None = Field(default=None, description="API key of the endpoint; never logged.")
    llm_fallbacks: list[str] = Field(
        default_factory=list,
        description="Providers tried in order after `llm` fails ('openai:MODEL', 'openai:MODEL@BASE_URL' "
        "or 'gguf:MODEL'); the extractive answerer always comes last.",
    )
    llm_connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to connect to the provider.")
    llm_first_token_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for the first generated token."
    )
    llm_total_timeout: float = Field(default=120.0, gt=0, description="Seconds one generation may take.")
    llm_retries: int = Field(default=2, ge=0, le=10, description="Retries on 429, 5xx and connect errors.")
    llm_backoff: float = Field(default=0.5, ge=0, description="Base seconds of exponential retry backoff.")
    llm_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open a provider's circuit breaker."
    )
    llm_breaker_cooldown: float = Field(
        default=30.0, ge=0, description="Seconds an open circuit breaker skips its provider."
    )
    llm_temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    llm_max_tokens: int = Field(default=512, ge=16, description="Most tokens one answer may generate.")
    llm_context_tokens: int = Field(
        default=3000, ge=200, description="Token budget of the retrieved context put into the prompt."
    )
    gguf_context_size: int = Field(
        default=8192,
        ge=512,
        le=131072,
        description="Context window, in tokens, a local GGUF model is loaded with (prompt and answer).",
    )
    gguf_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="CPU threads a local GGUF model uses; 0: every CPU this process may run on.",
    )
    llm_prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="USD per million prompt and completion tokens, by model name.",
    )
    tenant_token_budgets: dict[str, int] = Field(
        default_factory=dict,
        description="LLM tokens each tenant may use per UTC day ('*' applies to tenants not listed).",
    )
    query_transform: Literal["none", "rewrite", "multi_query", "hyde"] = Field(
        default="none",
        description="What the LLM does to a question before retrieval (only when `llm` is not "
        "'extractive'): nothing, rewrite it as a search query, write paraphrases whose results are "
        "fused, or write a hypothetical passage whose embedding drives the dense search.",
    )
    query_transform_count: int = Field(
        default=3, ge=1, le=8, description="Paraphrases the 'multi_query' transform asks for."
    )
    query_transform_hyde_lexical: Literal["question", "question_and_passage"] = Field(
        default="question",
        description="What BM25 searches with under 'hyde': the question alone, or the question "
        "followed by the hypothetical passage.",
    )
    query_transform_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a query transform may take before the question is used as is.",
    )
    query_transform_max_tokens: int = Field(
        default=256, ge=16, description="Most tokens the model may generate for one query transform."
    )
    query_transform_cache_size: int = Field(
        default=256, ge=0, description="Query transforms kept in memory for reuse; 0 turns the cache off."
    )
    verify_policy: Literal["remove", "mark"] = Field(
        default="remove", description="What happens to LLM sentences their citations do not support."
    )
    verify_min_support: float = Field(
        default=0.5, ge=0, le=1, description="Support a generated sentence needs to count as supported."
    )
    pii_masking: bool = Field(
        default=True, description="Mask e-mails, phone, card and IBAN numbers, IPs before the LLM sees text."
    )
    injection_policy: Literal["drop", "fence"] = Field(
        default="drop", description="What happens to retrieved chunks flagged as prompt injection."
    )
    answer_cache_size: int = Field(
        default=256, ge=0, description="Answers kept in the cache; 0 turns it off."
    )
    answer_cache_similarity: float = Field(
        default=0.97, gt=0, le=1, description="Question similarity at which a cached answer is reused."
    )
    # -- conversations and agent mode --------------------------------------------------------
    conversation_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Days a conversation is kept after its last message; idle longer, it is deleted "
        "with its turns (0: kept until deleted).",
    )
    retention_days: dict[str, dict[Literal["answers", "feedback", "jobs", "audit"], float]] = Field(
        default_factory=dict,
        description="Days answers (their records, with the feedback on them), feedback, finished jobs and "
        "audit events (verification starts after the removed ones) are kept, per tenant ('*' applies "
        "to tenants not listed), e.g. "
        '{"*": {"answers": 90, "jobs": 7}, "acme": {"feedback": 365}}; a kind not given is kept until '
        "deleted. Applied hourly by `fathom serve` and by `fathom compact` (docs/privacy.md).",
    )
    agent_max_steps: int = Field(
        default=6, ge=1, le=50, description="Most tool calls (searches, reads) of one agent-mode answer."
    )
    agent_max_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Most seconds one agent-mode answer may take."
    )
    agent_max_tokens: int = Field(
        default=16_000,
        ge=256,
        description="Most LLM tokens (prompt and completion) of one agent-mode answer.",
    )
    agent_search_k: int = Field(
        default=5, ge=1, le=20, description="Passages each agent search returns to the model."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (shared deployments): rate limits and job signalling across processes.",
    )
    redis_prefix: str = Field(
        default="fathom", description="Prefix of every Redis key and channel fathom uses."
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, description="Largest HTTP upload body; larger ones get 413."
    )
    max_request_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest body of other HTTP requests (search, ask, feedback ...); larger ones get 413.",
    )
    mcp_waits_per_key: int = Field(
        default=4,
        ge=0,
        le=1000,
        description="MCP ingest_text calls of one API key that may wait for their job at once, per "
        "serve process; further calls answer at once with the job queued.",
    )
    http_header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds a client has to send a request's headers before the connection is closed.",
    )
    http_keep_alive_timeout: int = Field(
        default=5, ge=1, le=600, description="Seconds an idle kept-alive connection stays open."
    )
    http_max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections per serve process before new requests get 503 (keep below ulimit -n).",
    )
    http_max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request line plus headers; larger ones get 400 (h11 server only).",
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests per minute per API key (0: no limit)."
    )
    rate_limit_burst: int = Field(default=60, ge=1, description="Requests an API key may make at once.")
    answer_tokens_per_minute: int = Field(
        default=20_000, ge=0, description="Answer tokens per minute per API key (0: no limit)."
    )
    job_workers: int = Field(
        default=1, ge=0, le=64, description="Ingestion worker threads per serve process."
    )
    job_lease_seconds: float = Field(
        default=30.0, gt=0, description="A job whose worker sent no heartbeat for this long is retried."
    )
    job_max_attempts: int = Field(
        default=3, ge=1, le=100, description="Attempts before a job whose worker keeps dying fails."
    )
    job_tenant_max_running: int = Field(
        default=0,
        ge=0,
        description="Jobs of one tenant running at once across all workers (0: no cap beyond "
        "round-robin fairness).",
    )
    job_tenant_max_queued_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=0,
        description="Bytes of one tenant's uploads waiting for ingestion; more get 429 (0: no cap).",
    )
    # -- audit trail (docs/audit.md) ---------------------------------------------------------
    audit_queries: bool = Field(
        default=False,
        description="Keep the text of searches and questions in the audit log (default: only an "
        "HMAC-SHA256 of it, keyed by audit_hash_key).",
    )
    audit_hash_key: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC that stands for query text in the audit log; set the same on "
        "every server so equal queries hash equal (unset: a random key kept in <home>/audit.key).",
    )
    # -- single sign-on (OIDC): tokens of an OpenID Provider beside API keys ----------------
    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer URL of the OpenID Provider whose JWT access or ID tokens the service accepts "
        "beside API keys (its discovery document is at ISSUER/.well-known/openid-configuration); "
        "unset: API keys only.",
    )
    oidc_audience: list[str] = Field(
        default_factory=list,
        description="Accepted `aud` values; a token must name at least one (required with oidc_issuer).",
    )
    oidc_algorithms: list[SignatureAlgorithm] = Field(
        default_factory=lambda: list(DEFAULT_SIGNATURE_ALGORITHMS),
        min_length=1,
        description="Signature algorithms accepted on tokens (asymmetric only; never none or HS*).",
    )
    oidc_leeway_seconds: float = Field(
        default=30.0, ge=0, le=300, description="Clock skew allowed when checking exp, nbf and iat."
    )
    oidc_jwks_cache_seconds: float = Field(
        default=3600.0, ge=60, description="Seconds the issuer's discovery document and keys are kept."
    )
    oidc_jwks_min_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Least seconds between two fetches of the issuer's keys triggered by an unknown kid.",
    )
    oidc_http_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds to fetch the discovery document or the keys."
    )
    oidc_allow_http_loopback: bool = Field(
        default=False,
        description="Accept an http:// issuer on a loopback address (127.0.0.1, ::1, localhost): tests "
        "and local development only; any other issuer must be https.",
    )
    oidc_tenant_claim: str = Field(
        default="tenant", min_length=1, description="Claim holding the principal's tenant."
    )
    oidc_tenant: str | None = Field(
        default=None,
        description="Tenant of every token (the tenant claim is then ignored): single-tenant deployments.",
    )
    oidc_user_claim: str = Field(default="sub", min_length=1, description="Claim holding the user name.")
    oidc_groups_claim: str = Field(
        default="groups", min_length=1, description="Claim holding the groups (a list or one string)."
    )
    oidc_role_claim: str = Field(
        default="role", min_length=1, description="Claim holding the role (a string or a list)."
    )
    oidc_role_values: dict[str, Literal["reader", "editor", "admin"]] = Field(
        default_factory=dict,
        description="Role claim values mapped to fathom roles, e.g. {'fathom-admins': 'admin'}; the values "
        "'reader', 'editor' and 'admin' map to themselves.",
    )
    oidc_default_role: Literal["reader", "editor", "admin"] = Field(
        default="reader",
        description="Role of a token whose role claim is absent or names no known role (least "
        "privilege: search and ask only).",
    )
    oidc_client_id: str | None = Field(
        default=None,
        description="Client id of the web page's public client (authorization code with PKCE, no "
        "secret); unset: the page asks for an API key only.",
    )
    oidc_scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email", "offline_access"],
        description="Scopes the web page asks for (and MCP clients are told about).",
    )
    oidc_resource: str | None = Field(
        default=None,
        description="Resource indicator (RFC 8707) the web page sends with its sign-in, for providers "
        "that issue JWT access tokens per resource.",
    )
    oidc_web_token: Literal["access_token", "id_token"] = Field(
        default="access_token",
        description="Which token the web page sends to the API after sign-in.",
    )
    public_url: str | None = Field(
        default=None,
        description="External base URL of the service, e.g. https://fathom.example.com (the page's "
        "redirect URI and the protected-resource metadata); default: from each request.",
    )
    # -- webhooks and observability ----------------------------------------------------------
    webhook_workers: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Webhook delivery threads per serve process (0: this process delivers none).",
    )
    webhook_url_allow: list[str] = Field(
        default_factory=list,
        description="Hosts or networks (CIDR) webhook URLs may reach even if private or loopback.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Total time of one delivery attempt (DNS, connect, request, response headers).",
    )
    webhook_retry_base_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Backoff after an endpoint's first failed attempt; doubles after each.",
    )
    webhook_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest backoff between two attempts at one endpoint."
    )
    webhook_retry_horizon_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="How long a delivery is retried before it is dead-lettered (default 24 hours).",
    )
    webhook_retention_days: float = Field(
        default=7.0,
        ge=0,
        description="Days delivered and dead-lettered deliveries are kept for inspection (0: forever).",
    )
    tracing: bool = Field(
        default=False,
        description="Export OpenTelemetry traces over OTLP/HTTP, configured by the standard OTEL_* "
        "variables (needs the otel extra).",
    )
    log_level: str = Field(default="WARNING", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_json: bool = Field(default=False, description="Write logs as JSON lines to stderr.")
    # Micro-batching of query embeddings in `fathom serve` (fathom.embed.batching).
    query_batch_max: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Most concurrent queries `fathom serve` embeds in one forward pass (1: no batching).",
    )
    query_batch_window_ms: float = Field(
        default=2.0,
        ge=0,
        le=100,
        description="Milliseconds a query-embedding batch may wait for more queries when others "
        "already wait; a lone query never waits.",
    )
    gil_switch_interval_ms: float = Field(
        default=0.5,
        gt=0,
        le=100,
        description="Python's thread switch interval in `fathom serve`, in milliseconds (Python's "
        "default is 5): how long a thread finishing a model kernel may wait for the interpreter lock.",
    )

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            return Path(value).expanduser().resolve()
        return value

    @field_validator("llm")
    @classmethod
    def _check_llm(cls, value: str) -> str:
        if value != "extractive" and not _is_provider_spec(value):
            raise ValueError("must be 'extractive', 'openai:MODEL' or 'gguf:MODEL'")
        return value

    @field_validator("llm_fallbacks")
    @classmethod
    def _check_fallbacks(cls, value: list[str]) -> list[str]:
        bad = [spec for spec in value if spec != "extractive" and not _is_provider_spec(spec)]
        if bad:
            raise ValueError(f"{bad} must be 'openai:MODEL', 'openai:MODEL@BASE_URL' or 'gguf:MODEL'")
        return value

    @field_validator("database_replica_urls", mode="before")
    @classmethod
    def _split_replica_urls(cls, value: Any) -> Any:
        if isinstance(value, str):  # the environment variable: comma-separated
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_replica_urls")
    @classmethod
    def _check_replica_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith("postgresql"):
                safe = url.split("@")[-1] if "@" in url else url
                raise ValueError(f"{safe!r} is not a PostgreSQL URL (postgresql+psycopg://USER@HOST:PORT/DB)")
        if len(set(value)) != len(value):
            raise ValueError("lists a replica twice")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be an http(s) URL such as https://fathom.example.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_oidc(self) -> Settings:
        if self.oidc_issuer is None:
            return self
        problem = oidc_url_problem(self.oidc_issuer, allow_http_loopback=self.oidc_allow_http_loopback)
        if problem:
            raise ValueError(f"oidc_issuer {problem}")
        if self.oidc_issuer.endswith("/") and urlsplit(self.oidc_issuer).path not in ("", "/"):
            raise ValueError("oidc_issuer must be exactly the provider's `iss`, without a trailing /")
        if not self.oidc_audience:
            raise ValueError("oidc_audience must name at least one audience when oidc_issuer is set")
        return self

    @model_validator(mode="after")
    def _check_replicas(self) -> Settings:
        if not self.database_replica_urls:
            return self
        if not (self.database_url or "").startswith("postgresql"):
            raise ValueError(
                "database_replica_urls are replicas of a PostgreSQL store: set database_url to the "
                "primary's postgresql+psycopg:// URL"
            )
        if self.index_backend != "postgres":
            raise ValueError(
                "database_replica_urls need index_backend 'postgres' (the search index must be in the "
                "replicated database; the embedded backend searches files on each node)"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'fathom.db'}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


def load_settings(home: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: code arguments, then environment, then the settings file, then defaults.

    Raises:
        ConfigError: a setting is invalid or the settings file cannot be read.
    """
    chosen_home = Path(home) if home is not None else None
    if chosen_home is None and os.environ.get("FATHOM_HOME"):
        chosen_home = Path(os.environ["FATHOM_HOME"])
    if chosen_home is None:
        chosen_home = default_home()
    chosen_home = chosen_home.expanduser().resolve()

    file_values: dict[str, Any] = {}
    settings_file = chosen_home / SETTINGS_FILE
    if settings_file.is_file():
        try:
            file_values = tomllib.loads(settings_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read settings file {settings_file}: {exc}") from None
    # The environment outranks the file: drop file keys that an environment variable sets.
    file_values = {k: v for k, v in file_values.items() if f"FATHOM_{k.upper()}" not in os.environ}
    values = {**file_values, **{k: v for k, v in overrides.items() if v is not None}, "home": chosen_home}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None
