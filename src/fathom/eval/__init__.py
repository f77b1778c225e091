"""Evaluation: datasets, metrics, runners and reports (``fathom eval``)."""
