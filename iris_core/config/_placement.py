"""Where a team's Claude Code runs: here (the default), on another host over SSH, or on a Ray cluster.

``remote``, ``remoteOptions`` and ``claudePath`` are the original iris-mcp's keys for a team on another host;
``placement: {kind: ray, ...}`` (a team's, or ``settings.placement`` for every team) is Iris's own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from ._models import RayPlacement, SshRemote
from ._reader import Reader, describe

__all__ = ["parse_placement", "parse_remote"]

_REMOTE_OPTION_KEYS = (
    "identity",
    "port",
    "strictHostKeyChecking",
    "connectTimeout",
    "serverAliveInterval",
    "serverAliveCountMax",
    "compression",
    "forwardAgent",
    "extraSshArgs",
)
_REFUSED_REMOTE_OPTIONS = {
    "passphrase": "Iris runs the OpenSSH client in batch mode, which never asks for a passphrase; "
    "load the key into ssh-agent (or use a key without one) and remove passphrase",
}
_PLACEMENT_KEYS = ("kind", "address", "namespace", "cpus", "memoryMb")
_PLACEMENT_KINDS = ("local", "ray")
_MAX_PORT = 65535


def parse_remote(
    reader: Reader, key: str, raw: object, options: object, claude_path: object, base_dir: Path
) -> SshRemote | None:
    """Read a team's ``remote`` (``"ssh user@host"``), ``remoteOptions`` and ``claudePath``; None if local."""
    text = reader.string(f"{key}.remote", raw)
    if text is None:
        if options is not None:
            reader.add(f"{key}.remoteOptions", "applies only to a team with remote")
        return None
    words = text.split()
    if words and words[0] == "ssh":
        words = words[1:]
    if len(words) != 1 or words[0].startswith("-"):
        reader.add(
            f"{key}.remote",
            f'expected "ssh user@host" (or "ssh host"), got {describe(text)}; '
            "put ssh options in remoteOptions",
        )
        return None
    cli = reader.string(f"{key}.claudePath", claude_path) or "claude"
    data = reader.mapping(f"{key}.remoteOptions", options)
    if not data:
        return SshRemote(destination=words[0], claude_path=cli)
    okey = f"{key}.remoteOptions"
    reader.check_keys(okey, data, _REMOTE_OPTION_KEYS, refused=_REFUSED_REMOTE_OPTIONS)
    identity = reader.string(f"{okey}.identity", data.get("identity"))

    def optional_int(name: str, minimum: int, maximum: int | None = None) -> int | None:
        value = reader.integer(f"{okey}.{name}", data.get(name), -1, minimum=minimum, maximum=maximum)
        return None if value == -1 else value

    return SshRemote(
        destination=words[0],
        claude_path=cli,
        identity=(base_dir / Path(identity).expanduser()).resolve() if identity else None,
        port=optional_int("port", 1, _MAX_PORT),
        strict_host_key_checking=reader.boolean(
            f"{okey}.strictHostKeyChecking", data.get("strictHostKeyChecking"), True
        ),
        connect_timeout_ms=optional_int("connectTimeout", 1),
        server_alive_interval_s=optional_int("serverAliveInterval", 1),
        server_alive_count_max=optional_int("serverAliveCountMax", 1),
        compression=reader.boolean(f"{okey}.compression", data.get("compression"), False),
        forward_agent=reader.boolean(f"{okey}.forwardAgent", data.get("forwardAgent"), False),
        extra_ssh_args=reader.strings(f"{okey}.extraSshArgs", data.get("extraSshArgs")),
    )


def parse_placement(
    reader: Reader, key: str, raw: object, default: RayPlacement | None
) -> RayPlacement | None:
    """Read a ``placement``: ``{kind: local}`` or ``{kind: ray, address, ...}``; ``default`` if unset."""
    if raw is None:
        return default
    data = reader.mapping(key, raw)
    if data is None:
        return default
    reader.check_keys(key, data, _PLACEMENT_KEYS, refused={})
    kind = reader.string(f"{key}.kind", data.get("kind"))
    if kind not in _PLACEMENT_KINDS:
        reader.add(f"{key}.kind", f"expected one of {', '.join(_PLACEMENT_KINDS)}, got {describe(kind)}")
        return default
    if kind == "local":
        extra = sorted(str(k) for k in data if k != "kind")
        if extra:
            reader.add(key, f"kind local takes no other keys, got {', '.join(extra)}")
        return None
    address = reader.string(f"{key}.address", data.get("address"))
    if address is None:
        reader.add(f"{key}.address", "is required for kind ray: the cluster's host:port or ray://host:port")
        return default
    fallback = RayPlacement(address=address)
    return RayPlacement(
        address=address,
        namespace=reader.string(f"{key}.namespace", data.get("namespace")) or fallback.namespace,
        cpus=_cpus(reader, f"{key}.cpus", data, fallback.cpus),
        memory_mb=reader.integer(f"{key}.memoryMb", data.get("memoryMb"), fallback.memory_mb, minimum=1),
    )


def _cpus(reader: Reader, key: str, data: Mapping[object, object], default: float) -> float:
    """Read a CPU count: a finite number > 0 (fractions are fine: Ray packs them)."""
    raw = data.get("cpus")
    if raw is None:
        return default
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw) and raw > 0:
        return float(raw)
    reader.add(key, f"expected a number of CPUs > 0, got {describe(raw)}")
    return default
