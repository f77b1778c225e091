"""``fathom serve``: the multi-tenant HTTP service over :class:`fathom.Fathom`."""

from fathom.service.app import create_app, create_app_from_environment

__all__ = ["create_app", "create_app_from_environment"]
