"""Sending settings: declared, typed and documented in ``core/settings.py`` (the sending table
of docs/readme/settings.md); ``setting(NAME)`` reads the current app's value."""

from core.settings import setting

__all__ = ["setting"]
