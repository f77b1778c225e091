"""fathom: self-hostable knowledge search and question answering with checkable citations.

>>> from fathom import Fathom
>>> with Fathom(home="/tmp/fathom-demo") as fathom:        # doctest: +SKIP
...     fathom.ingest(["docs/"])
...     print(fathom.ask("How does fathom rank results?").answer)
"""

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
