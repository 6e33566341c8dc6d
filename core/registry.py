"""The domain packages, and the import of their models, tasks and views by convention."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

#: Each package may have models.py (tables), tasks.py (actors) and views.py (a ``bp`` blueprint).
DOMAIN_PACKAGES = (
    "accounts",
    "subscribers",
    "campaigns",
    "tracking",
    "privacy",
    "engine",
    "breaches",
    "media",
    "webhooks",
    "api",
)


def import_modules(kind: str) -> list[ModuleType]:
    """Import ``<package>.<kind>`` for every domain package that has one."""
    modules = []
    for package in DOMAIN_PACKAGES:
        if importlib.util.find_spec(package) is None:
            continue
        name = f"{package}.{kind}"
        if importlib.util.find_spec(name) is not None:
            modules.append(importlib.import_module(name))
    return modules
