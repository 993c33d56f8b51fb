"""The services cryolive ships, and loading a registry named on the command line."""

from __future__ import annotations

import importlib

from cryolive.messaging.echo import echo_service
from cryolive.messaging.service import Registry


def default_registry() -> Registry:
    """A new registry of every built-in service."""
    return Registry([echo_service()])


def registry_from(spec: str) -> Registry:
    """The registry a ``"package.module:function"`` spec names (the function returns one).

    Raises
    ------
    ValueError
        When ``spec`` is malformed, cannot be imported, or does not give a :class:`Registry`.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"spec: expected 'module:function', got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"spec: cannot load {spec!r}: {exc}") from exc
    registry = factory()
    if not isinstance(registry, Registry):
        raise ValueError(f"spec: {spec!r} returned {type(registry).__name__}, not a Registry")
    return registry
