"""Iris's configuration: ``config.yaml`` loaded, substituted and validated into frozen values.

The file has the original iris-mcp's shape (``settings:`` and ``teams:``, camelCase keys, durations in
milliseconds).
:func:`load_config` either returns a complete, valid :class:`IrisConfig` or raises one
:class:`~iris_core.errors.ConfigurationError` whose message lists every problem as ``file: key: problem``,
so start-up fails once, with everything a person needs to fix the file.

Modules, in the order a load passes through them: ``_load`` (file and YAML errors), ``_yaml`` (the YAML
dialect), ``_schema`` (keys and rules), ``_reader`` (typed values and problem collection),
``_interpolate`` (``${VAR}`` substitution) and ``_models`` (the result).
"""

from ._load import load_config
from ._models import (
    DEFAULT_MCP_PERMISSIONS,
    ApiConfig,
    GrantPermission,
    IrisConfig,
    RateLimitConfig,
    RayPlacement,
    Settings,
    SshRemote,
    TeamConfig,
    TlsConfig,
    WebhookConfig,
)
from ._schema import parse_config

__all__ = [
    "ApiConfig",
    "DEFAULT_MCP_PERMISSIONS",
    "GrantPermission",
    "IrisConfig",
    "RateLimitConfig",
    "RayPlacement",
    "Settings",
    "SshRemote",
    "TeamConfig",
    "TlsConfig",
    "WebhookConfig",
    "load_config",
    "parse_config",
]
