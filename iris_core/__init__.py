"""The Iris domain: config, the pool of Claude Code processes, sessions and records, keys and the audit log.

Imports no transport (grpc, fastapi, starlette, mcp); tests/test_layering.py keeps it so. Transports use
``IrisService`` (one method per tool) and the error tree; the rest is reached through them. The names below
load on first use, so a light user of one module (a CLI reading keys.db) does not load the pool and
Claude's SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import IrisConfig, load_config
    from .errors import IrisError
    from .service import IrisService

__all__ = ["IrisConfig", "IrisError", "IrisService", "load_config"]

_HOMES = {"IrisConfig": "config", "load_config": "config", "IrisError": "errors", "IrisService": "service"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'iris_core' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
