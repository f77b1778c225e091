"""Ingest on a Ray cluster: CPU tasks parse and chunk, actors embed, the driver commits.

The driver lists the files and change-detects them exactly as a plain ingest does
(:meth:`IngestPipeline.read_file`: unchanged files are never sent anywhere). Each changed file
becomes one Ray task that parses it inside the same parser sandbox as a plain ingest (a
:class:`ParserPool` in the task's worker process: CPU, wall-time and memory limits, a poisoned
file fails alone) and chunks it with the same rule (:func:`chunk_parsed`). Embedding actors load
the model once (``num_gpus=1`` each where the cluster has GPUs, CPU actors otherwise) and embed
length-sorted batches. The driver commits each embedded batch through the pipeline's own
:meth:`IngestPipeline.commit`: one transaction per document, so a document is never half-written,
and a rerun after any failure (a node, a worker, the driver itself) does only what is missing.

Ray retries a task whose node or worker died; a file whose task is lost for good, or a batch no
actor could embed, fails with ``ingest.cluster_failed`` and nothing of it is stored.

Without ``RAY_ADDRESS`` a local Ray runtime is started on a loopback address, with no dashboard
and no usage reporting: nothing leaves the machine.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import structlog

from fathom.config import Settings
from fathom.domain import FileOutcome, IngestReport
from fathom.embed.base import Embedder, create_embedder
from fathom.errors import ConfigError, FathomError
from fathom.ingest.pipeline import (
    EMBED_BATCH_CHUNKS,
    FileKey,
    IngestPipeline,
    PendingDocument,
    ProgressCallback,
    attach_vectors,
    chunk_parsed,
    failed_outcome,
    parse_limits,
    parse_options,
)
from fathom.ingest.sandbox import ParserPool

__all__ = [
    "CLUSTER_ENGINES",
    "LOOPBACK_NODE_IP",
    "ClusterIngest",
    "RemoteEmbedder",
    "import_ray",
    "prepare_cluster",
    "ray_runtime",
]

log = structlog.get_logger(__name__)

CLUSTER_ENGINES = ("ray",)

# Ray (2.60) rewrites 127.0.0.1 and "localhost" to the machine's outward address, so a local
# runtime is started on another loopback address: every Ray connection stays on `lo`.
LOOPBACK_NODE_IP = "127.0.0.2"

INSTALL_HINT = "pip install 'fathom-search[cluster]'"

# Parse tasks in flight per CPU of the cluster, and embedding batches queued per actor.
_PARSE_WINDOW_PER_CPU = 2
_EMBED_QUEUE_PER_ACTOR = 2
# Ray retries a parse task whose worker or node died this many times; an embedding actor is
# restarted (on another node when its own is gone) and its call retried as often.
_TASK_RETRIES = 3


def prepare_cluster(engine: str) -> ModuleType:
    """Check a cluster engine's name and load it; call before the store's indexes are opened.

    Raises:
        ConfigError: an unknown engine (``cluster.unknown``); see :func:`import_ray`.
    """
    if engine not in CLUSTER_ENGINES:
        raise ConfigError(
            f"unknown cluster engine {engine!r}; known: {', '.join(CLUSTER_ENGINES)}",
            code="cluster.unknown",
        )
    return import_ray()


def import_ray() -> ModuleType:
    """The ``ray`` module.

    usearch's native library (the embedded dense index) carries its own copy of libstdc++'s
    ``std::regex`` as process-wide unique symbols: Ray's core library, loaded after it, aborts
    the whole process on its first regular expression. Ray loaded first is fine, which is what
    ``fathom ingest --cluster ray`` does; a program must import ray before it opens a home.

    Raises:
        ConfigError: ray is not installed (``cluster.ray_missing``), with how to install it;
            or the dense index was loaded before it (``cluster.import_order``).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if "ray._raylet" not in sys.modules and "usearch.compiled" in sys.modules:
        raise ConfigError(
            "Ray must be imported before fathom opens its indexes (their native libraries clash): "
            "`import ray` at the start of the program, or use `fathom ingest --cluster ray`",
            code="cluster.import_order",
        )
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            f"--cluster ray needs Ray, which is not installed; install it with: {INSTALL_HINT}",
            code="cluster.ray_missing",
        ) from exc
    return ray


@contextmanager
def ray_runtime() -> Iterator[ModuleType]:
    """Ray, connected: to ``RAY_ADDRESS`` when it is set, else to a local runtime started here
    (loopback only, no dashboard) and stopped on exit. A runtime already connected is reused.

    Raises:
        ConfigError: ray is missing (``cluster.ray_missing``).
        BackendUnavailable: the cluster at ``RAY_ADDRESS`` could not be reached
            (``cluster.unreachable``).
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    with _stdout_to_stderr():
        _connect(ray)
        try:
            yield ray
        finally:
            ray.shutdown()


def _connect(ray: ModuleType) -> None:
    from fathom.errors import BackendUnavailable

    address = os.environ.get("RAY_ADDRESS")
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(
                _node_ip_address=LOOPBACK_NODE_IP,
                include_dashboard=False,
                num_cpus=os.cpu_count() or 1,
                **quiet,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "at RAY_ADDRESS" if address else "locally"
        raise BackendUnavailable(
            f"could not connect to the Ray cluster {where}", code="cluster.unreachable"
        ) from exc


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Ray's core library writes the cluster's notices (a task retried after a node died) to file
    descriptor 1, where they would corrupt a ``--json`` report: they go to standard error."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:
        yield
        return
    os.dup2(2, 1)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@dataclass(frozen=True, slots=True)
class _Work:
    """What a parse task needs: the settings (parser limits, chunk sizes, embedder) and the
    metadata every document gets."""

    settings: Settings
    metadata: dict[str, Any]


# One parser sandbox and one tokenizer per Ray worker process, kept across the tasks it runs.
_worker_lock = threading.Lock()
_worker_state: dict[str, Any] = {}


def _worker_tools(settings: Settings) -> tuple[ParserPool, Embedder]:
    with _worker_lock:
        if "parsers" not in _worker_state:
            _worker_state["parsers"] = ParserPool(1, parse_limits(settings), parse_options(settings))
            # Only the tokenizer is used here (chunks are measured in the model's tokens).
            _worker_state["embedder"] = create_embedder(settings.embedder, device="cpu")
        return _worker_state["parsers"], _worker_state["embedder"]


def _parse_and_chunk(data: bytes, name: str, key: FileKey, work: _Work) -> PendingDocument | FileOutcome:
    """A parse task: the file parsed in the sandbox and chunked, or the outcome that failed it."""
    parsers, embedder = _worker_tools(work.settings)
    try:
        parsed = parsers.parse(data, name)
    except FathomError as exc:
        return failed_outcome(key.source, exc, skip_unsupported=True)
    metadata = {**work.metadata, "filename": key.path.name}
    return chunk_parsed(
        parsed, key.source, key.content_hash, metadata, embedder, work.settings, path=key.path
    )


class _EmbedActor:
    """An embedding actor: loads the model once, embeds length-sorted batches."""

    def __init__(self, spec: str, device: str, batch_size: int) -> None:
        self._model = create_embedder(spec, device=device, batch_size=batch_size)

    def describe(self) -> tuple[str, int, int]:
        return self._model.name, self._model.dim, self._model.max_tokens

    def embed(self, texts: list[str]) -> np.ndarray:
        # Length-sorted, so each model batch pads to similar lengths; rows go back in order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = self._model.embed_documents([texts[i] for i in order])
        out = np.empty_like(vectors)
        out[order] = vectors
        return out


class RemoteEmbedder:
    """The driver's view of the embedding actors' model: its name and size, without loading it.

    Embedding happens in the actors; chunking in the parse tasks.
    """

    def __init__(self, name: str, dim: int, max_tokens: int) -> None:
        self._name, self._dim, self._max_tokens = name, dim, max_tokens

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError("documents are embedded by the cluster's actors")

    def embed_query(self, text: str) -> np.ndarray:
        raise NotImplementedError("documents are embedded by the cluster's actors")

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        raise NotImplementedError("documents are chunked by the cluster's tasks")


@dataclass(slots=True)
class _EmbedCall:
    batch: list[PendingDocument]
    known: dict[str, np.ndarray]
    digests: list[str]
    texts: list[str]
    actor: int
    attempts: int = 1


def _lost(source: str, exc: BaseException) -> FileOutcome:
    log.warning("ingest.cluster_task_lost", error=type(exc).__name__)
    return FileOutcome(
        source,
        "failed",
        error_code="ingest.cluster_failed",
        message="the cluster lost the work on this file (a node or worker died, retries "
        "exhausted); nothing was stored, run the ingest again to finish it",
    )


class ClusterIngest:
    """Runs one ingest on a connected Ray runtime.

    Args:
        ray: the connected ``ray`` module (:func:`ray_runtime`).
        settings: the home's settings (parser limits, chunking, the embedder, its batch size).
        make_pipeline: builds the driver's pipeline (change detection and commits) around the
            actors' model.
        actors: embedding actors; 0: one per GPU when the cluster has GPUs, else one per node.
    """

    def __init__(
        self,
        ray: ModuleType,
        settings: Settings,
        make_pipeline: Callable[[Embedder], IngestPipeline],
        *,
        actors: int = 0,
    ) -> None:
        self._ray = ray
        self._settings = settings
        self._make_pipeline = make_pipeline
        self._actor_count = actors

    def _start_actors(self) -> list[Any]:
        ray = self._ray
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        count = self._actor_count or (gpus or max(1, nodes))
        options: dict[str, Any] = {
            "num_cpus": 1,
            "num_gpus": 1 if gpus else 0,
            "max_restarts": _TASK_RETRIES,
            "max_task_retries": _TASK_RETRIES,
            "scheduling_strategy": "SPREAD",
        }
        device = "cuda" if gpus else "cpu"
        actor_class = ray.remote(_EmbedActor)
        settings = self._settings
        log.info("ingest.cluster_actors", actors=count, device=device, nodes=nodes)
        return [
            actor_class.options(**options).remote(settings.embedder, device, settings.embed_batch_size)
            for _ in range(count)
        ]

    def ingest_files(
        self,
        files: Iterable[Path],
        *,
        tenant: str,
        metadata: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        after_commit: Callable[[], object] | None = None,
    ) -> IngestReport:
        """Ingest files on the cluster; every file gets one outcome, as with a plain ingest."""
        ray = self._ray
        actors = self._start_actors()
        try:
            name, dim, max_tokens = ray.get(actors[0].describe.remote())
            pipeline = self._make_pipeline(RemoteEmbedder(name, dim, max_tokens))
            return _Run(ray, pipeline, actors, tenant, progress, after_commit).run(
                files, _Work(self._settings, dict(metadata or {}))
            )
        finally:
            for actor in actors:
                ray.kill(actor)


class _Run:
    """The driver's loop of one cluster ingest: dispatch, collect, embed, commit."""

    def __init__(
        self,
        ray: ModuleType,
        pipeline: IngestPipeline,
        actors: list[Any],
        tenant: str,
        progress: ProgressCallback | None,
        after_commit: Callable[[], object] | None,
    ) -> None:
        self._ray = ray
        self._pipeline = pipeline
        self._actors = actors
        self._tenant = tenant
        self._progress = progress
        self._after_commit = after_commit
        self._report = IngestReport()
        self._parsing: dict[Any, FileKey] = {}
        self._embedding: dict[Any, _EmbedCall] = {}
        self._waiting: list[PendingDocument] = []
        self._parse = ray.remote(_parse_and_chunk).options(
            num_cpus=1, max_retries=_TASK_RETRIES, retry_exceptions=False
        )

    def _tell(self, event: str, amount: int) -> None:
        if self._progress is not None and amount:
            self._progress(event, amount)

    def _done(self, outcome: FileOutcome) -> None:
        self._report.outcomes.append(outcome)
        self._tell("file", 1)

    def run(self, files: Iterable[Path], work: _Work) -> IngestReport:
        ray = self._ray
        work_ref = ray.put(work)
        window = max(2, int(ray.cluster_resources().get("CPU", 1)) * _PARSE_WINDOW_PER_CPU)
        queue_limit = len(self._actors) * _EMBED_QUEUE_PER_ACTOR
        pending = iter(files)
        exhausted = False
        while True:
            while not exhausted and len(self._parsing) < window and len(self._embedding) < queue_limit:
                path = next(pending, None)
                if path is None:
                    exhausted = True
                    break
                outcome, job = self._pipeline.read_file(path, self._tenant)
                if outcome is not None:
                    self._done(outcome)
                elif job is not None:
                    self._parsing[self._parse.remote(job.data, job.name, job.key, work_ref)] = job.key
            waiting_chunks = sum(len(p.inputs) for p in self._waiting)
            if self._waiting and (waiting_chunks >= EMBED_BATCH_CHUNKS or (exhausted and not self._parsing)):
                self._embed(self._waiting)
                self._waiting = []
                continue
            in_flight = [*self._parsing, *self._embedding]
            if not in_flight:
                if exhausted:
                    return self._report
                continue
            ready, _ = ray.wait(in_flight, num_returns=1, timeout=1.0)
            for ref in ready:
                if ref in self._parsing:
                    self._parsed(ref)
                else:
                    self._embedded(ref)

    def _parsed(self, ref: Any) -> None:
        key = self._parsing.pop(ref)
        try:
            result = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            self._done(_lost(key.source, exc))
            return
        if isinstance(result, FileOutcome):
            log.info("ingest.file_failed", code=result.error_code)
            self._done(result)
            return
        self._tell("chunks_total", len(result.inputs))
        self._waiting.append(result)

    def _embed(self, batch: list[PendingDocument]) -> None:
        known, missing = self._pipeline.embedding_plan(batch)
        self._tell("embeddings_total", len(missing))
        if not missing:
            self._commit(batch, known)
            return
        busy = [0] * len(self._actors)
        for call in self._embedding.values():
            busy[call.actor] += 1
        actor = busy.index(min(busy))
        call = _EmbedCall(batch, known, list(missing), list(missing.values()), actor)
        self._embedding[self._actors[actor].embed.remote(call.texts)] = call

    def _embedded(self, ref: Any) -> None:
        call = self._embedding.pop(ref)
        try:
            vectors = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            if call.attempts <= _TASK_RETRIES:
                # Ray already retried on the actor's restart; try another actor as well.
                call.actor = (call.actor + 1) % len(self._actors)
                call.attempts += 1
                self._embedding[self._actors[call.actor].embed.remote(call.texts)] = call
                return
            for pending in call.batch:
                self._done(_lost(pending.source, exc))
            return
        call.known.update(zip(call.digests, vectors, strict=True))
        self._tell("embedded", len(call.digests))
        self._commit(call.batch, call.known)

    def _commit(self, batch: list[PendingDocument], vectors: dict[str, np.ndarray]) -> None:
        attach_vectors(batch, vectors)
        self._report.outcomes.extend(self._pipeline.commit(batch, self._tenant, self._progress))
        if self._after_commit is not None:
            self._after_commit()
