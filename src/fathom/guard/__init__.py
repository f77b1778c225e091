"""Guardrails: PII masking, prompt-injection screening, output sanitising."""

from fathom.guard.injection import InjectionVerdict, screen_injection
from fathom.guard.pii import PiiVault
from fathom.guard.sanitize import sanitize_output

__all__ = ["InjectionVerdict", "PiiVault", "sanitize_output", "screen_injection"]
