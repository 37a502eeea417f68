"""A real Iris for tests: config with throwaway team folders, the offline model, gRPC on port 0."""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.rpc import error_details_pb2, status_pb2

from iris_app.app import RunningIris, running_iris
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_core.config import IrisConfig, load_config
from iris_core.logs import LogRing

TEAMS = ("alpha", "beta", "gamma")

MCP_TOOLS = frozenset(
    {
        "send_message",
        "ask_message",
        "quick_message",
        "session_cancel",
        "session_reboot",
        "session_delete",
        "session_fork",
        "session_report",
        "team_wake",
        "team_launch",
        "team_sleep",
        "team_wake_all",
        "team_status",
        "list_teams",
        "get_logs",
        "get_date",
        "permissions__approve",
        "ask",
        "execute",
        "get_message",
        "cancel_message",
    }
)
"""The MCP tools Iris serves, by their public names."""

CALL_DEADLINE_S = 60.0
"""Deadline every unary call of a test gets unless it sets its own, so no test waits on a stuck server."""


def write_config(
    root: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    teams: Mapping[str, Mapping[str, Any]] | None = None,
    api: Mapping[str, Any] | None = None,
) -> Path:
    """Write a config with team folders under ``root``; each Claude process gets ``root/home`` as HOME."""
    home = root / "claude-home"
    home.mkdir(parents=True, exist_ok=True)
    team_defs: dict[str, dict[str, Any]] = {}
    for name in TEAMS:
        folder = root / "teams" / name
        folder.mkdir(parents=True, exist_ok=True)
        team_defs[name] = {"path": str(folder), "description": f"team {name}", "grantPermission": "yes"}
    for name, extra in (teams or {}).items():
        team_defs.setdefault(name, {"path": str(root / "teams" / name)})
        Path(team_defs[name]["path"]).mkdir(parents=True, exist_ok=True)
        team_defs[name].update(extra)
    data: dict[str, Any] = {
        "settings": {
            "maxProcesses": 10,
            "spawnTimeout": 30000,
            "env": {"HOME": str(home)},
            **(settings or {}),
        },
        # The tests make many calls; the rate-limit tests set their own limits.
        "api": {"rateLimit": {"maxRequests": 100_000}, **(api or {})},
        "teams": team_defs,
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Iris:
    """A running Iris and a connected stub."""

    running: RunningIris
    channel: grpc.aio.Channel
    stub: iris_pb2_grpc.IrisAsyncStub
    config: IrisConfig
    home: Path
    logs: LogRing
    admin_key: str

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.grpc.port}"


@asynccontextmanager
async def start_iris(
    root: Path, config_path: Path | None = None, *, http: bool = False
) -> AsyncIterator[Iris]:
    """Start Iris (offline model, gRPC on 127.0.0.1:0) with state in ``root/iris-home``; stop it after.

    With ``http`` the REST gateway (and MCP at /mcp) is served too, on a free port (``running.http_port``).
    """
    os.environ.setdefault("CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK", "1")
    config = load_config(config_path or write_config(root))
    home = root / "iris-home"
    logs = LogRing(1000)
    async with running_iris(
        config,
        home,
        host="127.0.0.1",
        grpc_port=0,
        offline_model=True,
        logs=logs,
        http_port=0 if http else None,
    ) as run:
        key_file = home / "admin.key"
        admin_key = key_file.read_text().strip() if key_file.exists() else ""
        interceptors: list[grpc.aio.ClientInterceptor] = [_DefaultDeadline()]
        interceptors += with_key(admin_key) if admin_key else []
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{run.grpc.port}", interceptors=interceptors
        ) as channel:
            yield Iris(run, channel, iris_pb2_grpc.IrisStub(channel), config, home, logs, admin_key)


def _with_key(key: str, details: Any) -> Any:
    metadata = grpc.aio.Metadata(*(tuple(details.metadata or ()) + (("authorization", f"Bearer {key}"),)))
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _DefaultDeadline(grpc.aio.UnaryUnaryClientInterceptor):
    """Gives every unary call without a deadline ``CALL_DEADLINE_S``."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.timeout is None:
            details = grpc.aio.ClientCallDetails(
                details.method, CALL_DEADLINE_S, details.metadata, details.credentials, details.wait_for_ready
            )
        return await continuation(details, request)


class _KeyOnUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, key: str) -> None:
        self._key = key

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_key(self._key, details), request)


class _KeyOnStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, key: str) -> None:
        self._key = key

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_key(self._key, details), request)


def with_key(key: str) -> list[grpc.aio.ClientInterceptor]:
    """Channel interceptors sending ``authorization: Bearer <key>`` on every call (grpc.aio registers an
    interceptor for one call kind only, hence one per kind)."""
    return [_KeyOnUnary(key), _KeyOnStream(key)]


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """Return the google.rpc.ErrorInfo a failed call carries (its reason, domain and metadata)."""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    raise AssertionError(f"no ErrorInfo on {exc.code()}: {exc.details()}")


def error_reason(exc: grpc.aio.AioRpcError) -> str:
    """Return the google.rpc.ErrorInfo reason carried by a failed call."""
    return str(error_info(exc).reason)


def error_details(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    """Return the ErrorInfo metadata carried by a failed call (e.g. ``field``, ``retryAfterMs``)."""
    return dict(error_info(exc).metadata)


def live_processes_in(folder: Path) -> list[int]:
    """Pids of live (non-zombie) processes whose working directory is inside ``folder``: Claude Code runs
    with a team folder as its cwd, so this finds a test's Claude processes without trusting the pool."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd.startswith(str(folder)) and state != "Z":
            found.append(int(entry.name))
    return found


@dataclass
class Served:
    """An ``iris serve`` subprocess and a stub talking to it."""

    process: asyncio.subprocess.Process
    stub: iris_pb2_grpc.IrisAsyncStub
    stderr: list[bytes]


@asynccontextmanager
async def iris_serve(
    root: Path, config: Path, *, offline_model: bool = True, args: tuple[str, ...] = ()
) -> AsyncIterator[Served]:
    """Run ``iris serve``, its home ``root/iris-home``; kill it after if it still runs.

    Without ``offline_model`` the config's ``settings.env`` must point Claude Code at a model (a test's own
    ``OfflineModel``, which then outlives the server). ``args`` are added to the command line.
    """
    env = {**os.environ, "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1"}
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "iris_app.cli", "serve", "--config", str(config), "--home", str(root / "iris-home")),
        *("--grpc-port", "0", "--no-http"),
        *(["--offline-model"] if offline_model else []),
        *args,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    lines: list[bytes] = []
    reading: asyncio.Task[None] | None = None
    try:
        assert server.stderr is not None
        stderr = server.stderr
        async with asyncio.timeout(30):
            while not (
                match := re.search(rb"gRPC listening on 127\.0\.0\.1:(\d+)", line := await stderr.readline())
            ):
                assert line, b"".join(lines).decode(errors="replace")
                lines.append(line)

        async def drain() -> None:  # keep reading, so the server never blocks on a full pipe
            while line := await stderr.readline():
                lines.append(line)

        reading = asyncio.ensure_future(drain())
        key = (root / "iris-home" / "admin.key").read_text().strip()
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{int(match[1])}", interceptors=with_key(key)
        ) as channel:
            yield Served(server, iris_pb2_grpc.IrisStub(channel), lines)
    finally:
        if server.returncode is None:
            server.kill()
        async with asyncio.timeout(30):
            await server.wait()
            if reading is not None:
                await reading


# --- calls every test makes: one place, each bounded --------------------------------------------------------


async def send(
    iris: Iris, text: str, *, to: str = "alpha", frm: str = "caller", timeout_ms: int | None = None
) -> pb.SendMessageResponse:
    """SendMessage from ``frm`` to ``to`` (``timeout_ms`` None: the server's default of 30 s)."""
    request = pb.SendMessageRequest(from_team=frm, to_team=to, message=text)
    if timeout_ms is not None:
        request.timeout = timeout_ms
    return await iris.stub.SendMessage(request)


async def tell_events(iris: Iris, request: pb.TellRequest, *, within_s: float = 60) -> list[pb.TellResponse]:
    """Every event of one Tell stream, bounded."""
    async with asyncio.timeout(within_s):
        return [event async for event in iris.stub.Tell(request)]


async def status_of(iris: Iris, team: str = "alpha", frm: str = "caller") -> pb.TeamStatusEntry:
    """The (frm, team) pair's TeamStatus entry."""
    status = await iris.stub.TeamStatus(pb.TeamStatusRequest(from_team=frm, team=team))
    return status.teams[0]


async def report_of(iris: Iris, team: str = "alpha", frm: str = "caller") -> pb.SessionReportResponse:
    """The (frm, team) pair's SessionReport."""
    return await iris.stub.SessionReport(pb.SessionReportRequest(team=team, from_team=frm))


async def wait_until_running(
    iris: Iris, team: str = "alpha", frm: str = "caller", within_s: float = 30
) -> None:
    """Wait (bounded) until the pair has a turn running, as TeamStatus reports it."""
    async with asyncio.timeout(within_s):
        while (await status_of(iris, team, frm)).notifications.running != 1:
            await asyncio.sleep(0.02)


def process_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie, exited but not reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def wait_until_gone(pid: int, within_s: float = 15) -> None:
    """Wait (bounded) until ``pid`` has exited."""
    async with asyncio.timeout(within_s):
        while process_alive(pid):
            await asyncio.sleep(0.02)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for ``localhost`` and its key into ``folder``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@dataclass(frozen=True)
class AuditEntry:
    """One row of the server's audit log, as the tests read it."""

    event: str
    key_name: str
    method: str
    team: str
    outcome: str
    detail: str


def audit_entries(home: Path) -> list[AuditEntry]:
    """Every row of ``home``'s audit log, oldest first (read with sqlite3, beside the running server)."""
    with sqlite3.connect(home / "audit.db") as db:
        rows = db.execute(
            "SELECT event, key_name, method, team, outcome, detail FROM audit ORDER BY id"
        ).fetchall()
    return [AuditEntry(*(str(value) for value in row)) for row in rows]
