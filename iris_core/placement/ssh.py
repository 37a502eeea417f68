"""Remote teams over SSH (a team's ``remote``): Claude Code runs on the team's host, driven as a local one.

A remote team's process is the SDK's ordinary client whose "CLI" is a local relay (``ssh_relay``), started
through the parent-death launcher like any Claude Code: the relay runs the OpenSSH client (``ssh -T``, batch
mode), which runs one fixed script on the host (``ssh_remote``); the script reads the team's environment,
folder, CLI, session and arguments from stdin and then runs Claude Code there, whose stdio is the SDK's. So
streaming, interrupt, permissions (``can_use_tool``), sleep and kill are the local ones, unchanged; the pid
Iris knows is the relay's, and killing it kills ssh (parent-death signal), which ends the remote side.

What differs from a local team, and why:

- **Resume** is decided on the host, where the transcript is (``ssh_remote``): Iris's own look-up reads
  this machine's files. A rewind of a cut-off turn (``resume_at``) needs the transcript too, so a remote
  team's cut-off turn runs again on the whole session instead (at least once, not exactly once).
- **Environment**: the remote Claude Code gets what Iris gives the team (``settings.env``, the team's
  ``env``, the offline model's or session MCP key, the child marker) and the Claude Code / Anthropic
  variables (``ssh_relay.FORWARDED_PREFIXES``), through the channel, never on a command line. Not the rest
  of Iris's environment (its ``PATH``, ``HOME``, locale stay local).
- **Iris's MCP tools** (``sessionMcpEnabled``) reach Iris through a reverse tunnel: ``ssh -R 0:<Iris's
  REST host:port>`` with ``ExitOnForwardFailure``, the remote port chosen by sshd (no collision to retry),
  and the server's URL rewritten to ``http://127.0.0.1:<that port>/mcp`` on the host. The stdio adapter
  (Iris without REST) cannot run on another host, so such a team's remote Claude starts without the tools,
  with a warning.
- **Host keys**: ``StrictHostKeyChecking=yes``, or ``accept-new`` with ``strictHostKeyChecking: false`` (a
  changed key is still refused); agent forwarding is off unless ``forwardAgent``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from claude_agent_sdk.types import McpHttpServerConfig, McpServerConfig

from ..children import MARKER_ENV, ChildRegistry
from ..claude_process import LaunchSpec, launch_claude
from ..config import SshRemote
from ..errors import ProcessError
from ..session_mcp import KEY_VARIABLE, MCP_SERVER_NAME
from . import ssh_relay
from .process import TeamProcess
from .ssh_relay import PLAN_ENV, PORT_PLACEHOLDER
from .ssh_remote import remote_command

__all__ = ["RELAY_FILE", "SshPlacement", "ssh_command"]

logger = logging.getLogger(__name__)

RELAY_FILE = "ssh-relay"
"""The relay's launcher script in ``$IRIS_HOME``."""
LOCAL_FOLDER = "ssh"
"""The local working folder of remote teams' relays, in ``$IRIS_HOME`` (their own folder is remote)."""
_DEFAULT_ALIVE_INTERVAL_S = 15
_DEFAULT_ALIVE_COUNT = 4
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def ssh_command(
    remote: SshRemote, *, tunnel_to: tuple[str, int] | None = None, ssh: str = "ssh"
) -> list[str]:
    """Return the ``ssh`` argv that runs the remote script on ``remote``'s host.

    Batch mode always (a prompt would hang a start), no shared connection (each process is its own, see
    ``SshPlacement``); keep-alives on by default so a dead link fails the
    turn; ``tunnel_to`` adds the reverse tunnel (remote port chosen by sshd, logged at INFO for the relay).
    ``ssh`` is the client to run (found on Iris's own ``PATH``, not the team's).
    """
    argv = [ssh, "-T", "-x", "-e", "none", "-o", "BatchMode=yes"]
    # No connection sharing, whatever the user's ssh config says (ssh takes an option's first value): a
    # ControlPersist master would outlive Iris, holding a logged-in connection to the host.
    argv += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    argv += ["-o", f"StrictHostKeyChecking={'yes' if remote.strict_host_key_checking else 'accept-new'}"]
    if remote.port is not None:
        argv += ["-p", str(remote.port)]
    if remote.identity is not None:
        argv += ["-i", str(remote.identity)]
    if remote.connect_timeout_ms is not None:
        argv += ["-o", f"ConnectTimeout={max(1, math.ceil(remote.connect_timeout_ms / 1000))}"]
    interval = remote.server_alive_interval_s or _DEFAULT_ALIVE_INTERVAL_S
    argv += ["-o", f"ServerAliveInterval={interval}"]
    argv += ["-o", f"ServerAliveCountMax={remote.server_alive_count_max or _DEFAULT_ALIVE_COUNT}"]
    if remote.compression:
        argv.append("-C")
    argv.append("-A" if remote.forward_agent else "-a")
    if tunnel_to is not None:
        host, port = tunnel_to
        target = f"[{host}]" if ":" in host else host
        argv += ["-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=INFO", "-R", f"0:{target}:{port}"]
    argv += list(remote.extra_ssh_args)
    argv += ["--", remote.destination, remote_command()]
    return argv


class SshPlacement:
    """Starts a remote team's Claude Code on its host with the OpenSSH client (see the module docstring).

    Holds nothing between launches: each process is its own ssh connection, so a connection's end is its
    process's end, and no shared master can outlive Iris.
    """

    def __init__(self, home: Path, children: ChildRegistry, death_launcher: Path | None) -> None:
        self._home = home
        self._children = children
        self._death_launcher = death_launcher
        self._relay: Path | None = None
        self._warned: set[str] = set()

    async def launch(self, spec: LaunchSpec, timeout_s: float) -> TeamProcess:
        """Start the process of ``spec`` on its team's host, within ``timeout_s`` (connect and handshake).

        Raises:
            ProcessError: the spec cannot be sent safely (a bad variable name, a relative folder), ssh
                failed (unreachable host, refused key, unknown host key) or Claude Code did not start there.

        """
        remote = spec.remote
        assert remote is not None, "SshPlacement launches remote teams only"
        _check(spec, remote)
        client = shutil.which("ssh")
        if client is None:
            raise ProcessError(f"{spec.pair}: the OpenSSH client (ssh) is not on Iris's PATH")
        servers, tunnel_to = self._servers(spec)
        env = dict(spec.env)
        if tunnel_to is None:
            env.pop(KEY_VARIABLE, None)  # no Iris server for it to reach: the key stays here
        plan = {
            "ssh": ssh_command(remote, tunnel_to=tunnel_to, ssh=client),
            "destination": remote.destination,
            "dir": str(spec.cwd),
            "cli": remote.claude_path,
            "session": spec.session_id,
            "env": sorted({*env, MARKER_ENV}),  # the marker too: what the remote Claude starts carries it
            "tunnel": tunnel_to is not None,
        }
        # Resume is the host's decision (ssh_remote), so ask for the session id; a rewind would need the
        # transcript here.
        remote_spec = dataclasses.replace(
            spec,
            env={**env, PLAN_ENV: json.dumps(plan)},
            resume=False,
            resume_at=None,
            drops_turn=None,
            mcp_servers=servers,
        )
        local = self._home / LOCAL_FOLDER
        local.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            process = await launch_claude(
                remote_spec,
                timeout_s=timeout_s,
                children=self._children,
                launcher=self._death_launcher,
                program=str(self._relay_script()),
                cwd=local,
            )
        except ProcessError as exc:  # the log has ssh's own words ("iris launcher: ssh to ... failed")
            raise ProcessError(f"{exc.message} (a remote team: the log has ssh's own messages)") from exc
        process.spec = spec  # the pool reads what it asked for (session, rewind), not the relay's plan
        logger.info(
            "Claude Code of %s runs on %s (local relay %s)", spec.pair, remote.destination, process.pid
        )
        return process

    def _servers(self, spec: LaunchSpec) -> tuple[dict[str, McpServerConfig], tuple[str, int] | None]:
        """Return the MCP servers for the remote Claude, and where a reverse tunnel must lead (or None).

        Iris's own server (``iris``) over ``/mcp`` gets the tunnel's remote end as its URL; over stdio (no
        REST here) it cannot run on the host and is left out, with one warning per team. Other servers are the
        team's own and pass as they are.
        """
        servers = dict(spec.mcp_servers)
        config = servers.get(MCP_SERVER_NAME)
        if config is None:
            return servers, None
        if config.get("type") == "http":
            http = cast(McpHttpServerConfig, config)
            parts = urlsplit(http["url"])
            if parts.hostname is None or parts.port is None:
                raise ProcessError(f"{spec.pair}: cannot tunnel to the Iris MCP server at {http['url']!r}")
            local = parts._replace(netloc=f"127.0.0.1:{PORT_PLACEHOLDER}").geturl()
            servers[MCP_SERVER_NAME] = McpHttpServerConfig(
                type="http", url=local, headers=http.get("headers", {})
            )
            return servers, (parts.hostname, parts.port)
        del servers[MCP_SERVER_NAME]
        team = spec.pair.rsplit("->", 1)[-1]
        if team not in self._warned:
            self._warned.add(team)
            logger.warning(
                "remote team %s starts without the Iris MCP tools: Iris serves them over stdio here "
                "(no REST), which cannot run on the team's host; serve REST (its /mcp endpoint) to give them",
                team,
            )
        return servers, None

    def _relay_script(self) -> Path:
        """Write (once per run) ``$IRIS_HOME/ssh-relay``: this Python, isolated, running ``ssh_relay``."""
        if self._relay is None:
            path = self._home / RELAY_FILE
            source = Path(ssh_relay.__file__).resolve()
            text = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -I -S {shlex.quote(str(source))} "$@"\n'
            temporary = path.with_suffix(".tmp")
            temporary.write_text(text)
            temporary.chmod(0o700)
            temporary.replace(path)
            self._relay = path
        return self._relay

    async def aclose(self) -> None:
        """Nothing is held between launches (each process is its own connection)."""


def _check(spec: LaunchSpec, remote: SshRemote) -> None:
    """Refuse what the remote script could not take safely: bad variable names, a relative folder."""
    bad = sorted(name for name in spec.env if not _NAME.fullmatch(name))
    if bad:
        raise ProcessError(f"{spec.pair}: environment variable names a remote shell cannot set: {bad}")
    if not spec.cwd.is_absolute():
        raise ProcessError(f"{spec.pair}: a remote team's path must be absolute on its host, got {spec.cwd}")
    if not remote.claude_path or remote.claude_path.startswith("-"):
        raise ProcessError(f"{spec.pair}: claudePath {remote.claude_path!r} is not a command")
