"""The exception tree drawn in core/errors.py names every error class the portal defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import core
import core.errors
from core.errors import PortalError


def test_the_drawn_exception_tree_names_every_portal_error():
    defined = set()
    for info in pkgutil.walk_packages(core.__path__, "core."):
        if ".migrations" in info.name or info.name in ("core.__main__",):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, PortalError) and obj.__module__ == module.__name__:
                defined.add(name)
    drawing = core.errors.__doc__ or ""
    missing = sorted(name for name in defined if f" {name} " not in drawing and f"─ {name}" not in drawing)
    assert missing == [], f"add these to the tree in core/errors.py: {missing}"
