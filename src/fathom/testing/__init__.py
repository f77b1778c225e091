"""Test helpers shipped with fathom, for fathom's own tests and for anyone writing a backend."""
