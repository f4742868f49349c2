"""Find every area's `tasks.py` (its handlers and scheduled jobs) by importing it."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil


def discover(package: str = "forecourt") -> list[str]:
    """Import `<package>.<area>.tasks` for every area that has one; returns the module names."""
    root = importlib.import_module(package)
    found: list[str] = []
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        name = f"{package}.{info.name}.tasks"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            found.append(name)
    return found
