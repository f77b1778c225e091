"""Drop-in retrievers for other frameworks, over an embedded :class:`~fathom.Fathom` or a server.

- :mod:`fathom.integrations.langchain`: ``FathomRetriever``, a LangChain ``BaseRetriever``
  (extra ``fathom-search[langchain]``).
- :mod:`fathom.integrations.llama_index`: ``FathomRetriever``, a LlamaIndex ``BaseRetriever``
  (extra ``fathom-search[llama-index]``).

Each module imports its framework, so import the one you use; ``import fathom`` imports neither.
"""
