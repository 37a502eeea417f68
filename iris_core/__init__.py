"""The Iris domain: config, the pool of Claude Code processes, sessions and records, keys and the audit log.

Imports no transport (grpc, fastapi, starlette, mcp); tests/test_layering.py keeps it so. Transports use
``IrisService`` (one method per tool) and the error tree; the rest is reached through them.
"""

from .config import IrisConfig, load_config
from .errors import IrisError
from .service import IrisService

__all__ = ["IrisConfig", "IrisError", "IrisService", "load_config"]
