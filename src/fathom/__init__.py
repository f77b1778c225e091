"""fathom: self-hostable knowledge search and question answering with checkable citations.

>>> from fathom import Fathom
>>> with Fathom(home="/tmp/fathom-demo") as fathom:        # doctest: +SKIP
...     fathom.ingest(["docs/"])
...     print(fathom.ask("How does fathom rank results?").answer)

The public names load on first use (PEP 562), so ``import fathom`` and the ``fathom`` command
start without the store, the indexes or the embedding model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fathom.api import Fathom
    from fathom.config import Settings, load_settings
    from fathom.domain import (
        Answer,
        AnswerDelta,
        Citation,
        DocumentInfo,
        FileOutcome,
        Hit,
        IngestReport,
        Principal,
        SentenceSupport,
        StoreStatus,
        Usage,
    )
    from fathom.errors import (
        BackendUnavailable,
        ConfigError,
        FathomError,
        IngestError,
        InvalidQuery,
        LimitExceeded,
        NotFound,
        ProviderError,
        UnsupportedFormat,
    )

__version__ = "0.1.0"

# Each public name and the module that defines it.
_LAZY: dict[str, str] = {
    "Fathom": "fathom.api",
    "Settings": "fathom.config",
    "load_settings": "fathom.config",
    **dict.fromkeys(
        (
            "Answer",
            "AnswerDelta",
            "Citation",
            "DocumentInfo",
            "FileOutcome",
            "Hit",
            "IngestReport",
            "Principal",
            "SentenceSupport",
            "StoreStatus",
            "Usage",
        ),
        "fathom.domain",
    ),
    **dict.fromkeys(
        (
            "BackendUnavailable",
            "ConfigError",
            "FathomError",
            "IngestError",
            "InvalidQuery",
            "LimitExceeded",
            "NotFound",
            "ProviderError",
            "UnsupportedFormat",
        ),
        "fathom.errors",
    ),
}

__all__ = [
    "Answer",
    "AnswerDelta",
    "BackendUnavailable",
    "Citation",
    "ConfigError",
    "DocumentInfo",
    "Fathom",
    "FathomError",
    "FileOutcome",
    "Hit",
    "IngestError",
    "IngestReport",
    "InvalidQuery",
    "LimitExceeded",
    "NotFound",
    "Principal",
    "ProviderError",
    "SentenceSupport",
    "Settings",
    "StoreStatus",
    "UnsupportedFormat",
    "Usage",
    "__version__",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        # ``import fathom`` used to import most submodules; ``fathom.config`` still works.
        try:
            return importlib.import_module(f"fathom.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fathom.{name}":
                raise
            raise AttributeError(f"module 'fathom' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
