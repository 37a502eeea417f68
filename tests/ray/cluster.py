"""A local multi-node Ray cluster for the tests: a head and worker nodes on this machine, each its own group.

Every node is started by ``ray start`` (the venv's) in a session of its own, so each node's daemons share one
process group, while Ray's workers (which make groups of their own) are children of their node's raylet:
a node is its group plus the group's descendants. That is how a test kills exactly one node, finds which
node runs a pid, and how the end of the tests stops everything started, without ``ray stop`` (which would
stop every Ray on the machine).

The head has no CPUs, so every actor lands on a worker node. Ray records a node by the host's address even
when told 127.0.0.1; the cluster is reached at 127.0.0.1 all the same.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
_START_TIMEOUT_S = 90.0
_GONE_WITHIN_S = 15.0
_OBJECT_STORE_BYTES = 100 * 2**20
WORKER_CPUS = 4
"""Logical CPUs of each worker node (the tests' teams ask for 1 each)."""


@dataclass
class Node:
    """One ``ray start`` of the cluster."""

    name: str
    group: int
    """The process group (and session) of its daemons: the pid of the ``ray start`` that made them."""


@dataclass
class LocalRayCluster:
    """A head (no CPUs) and worker nodes, on this machine; see the module's docstring."""

    temp_dir: Path
    port: int = 0
    nodes: dict[str, Node] = field(default_factory=dict)
    _count: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_head(self) -> None:
        self.port = free_port()
        self._start(
            "head",
            "--head",
            f"--port={self.port}",
            "--num-cpus=0",
            "--include-dashboard=false",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-port={free_port()}",
        )

    def add_worker(self) -> str:
        """Start a worker node and return its name (``worker-N``)."""
        self._count += 1
        name = f"worker-{self._count}"
        self._start(name, f"--address={self.address}", f"--num-cpus={WORKER_CPUS}")
        return name

    def _start(self, name: str, *args: str) -> None:
        env = {
            **os.environ,
            # The actors' class comes from this checkout, with the venv's packages.
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1",
            "RAY_USAGE_STATS_ENABLED": "0",
            "TMPDIR": str(
                self.temp_dir
            ),  # what the actors leave (a killed one cleans nothing) goes at the end
            # A node that dies is known dead within about a second, not Ray's default of about twenty (the
            # cluster's control store reads these; the tests kill a node and place its pair again).
            "RAY_health_check_initial_delay_ms": "1000",
            "RAY_health_check_period_ms": "300",
            "RAY_health_check_timeout_ms": "300",
            "RAY_health_check_failure_threshold": "3",
        }
        command = [
            str(RAY),
            "start",
            *args,
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
            f"--dashboard-agent-listen-port={free_port()}",
            # Each node would take 30% of the machine's memory for objects; the tests pass small ones.
            f"--object-store-memory={_OBJECT_STORE_BYTES}",
        ]
        log = self.temp_dir / f"{name}.log"
        with log.open("ab") as out:
            starting = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
            )
            self.nodes[name] = Node(name, starting.pid)
            try:
                code = starting.wait(_START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                starting.kill()
                starting.wait(10)
                code = -1
        if code != 0:
            raise RuntimeError(f"ray start of {name} failed ({code}): {log.read_text()[-3000:]}")

    def processes_of(self, name: str) -> set[int]:
        """The live processes of a node: its group and their descendants (Ray's workers, their children)."""
        group = self.nodes[name].group
        table = _process_table()
        found = {pid for pid, (_, pgid) in table.items() if pgid == group}
        grew = True
        while grew:
            grew = False
            for pid, (parent, _) in table.items():
                if pid not in found and parent in found:
                    found.add(pid)
                    grew = True
        return found

    def node_of(self, pid: int) -> str | None:
        """The node whose processes include ``pid`` (a Claude Code process started by an actor)."""
        for name in self.nodes:
            if pid in self.processes_of(name):
                return name
        return None

    def kill_node(self, name: str) -> None:
        """SIGKILL every process of a node, as if its machine died, and wait (bounded) until they are gone."""
        pids = self.processes_of(name)
        del self.nodes[name]
        _kill_and_wait(pids)

    def stop(self) -> None:
        """Kill every node's processes (workers first, then the head) and remove the temporary folder."""
        for name in sorted(self.nodes, key=lambda n: n == "head"):
            self.kill_node(name)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_cluster(workers: int) -> LocalRayCluster:
    """Start a head and ``workers`` worker nodes; on a failure, stop what started and raise."""
    # A short path: Ray's unix sockets live under it, and a socket path has a length limit.
    cluster = LocalRayCluster(Path(tempfile.mkdtemp(prefix="iris-ray-", dir="/tmp")))
    try:
        cluster.start_head()
        for _ in range(workers):
            cluster.add_worker()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parent_of(pid: int) -> int:
    """The parent pid of a live process (0 if it is gone)."""
    return _process_table().get(pid, (0, 0))[0]


def _process_table() -> dict[int, tuple[int, int]]:
    """Every live (non-zombie) process: pid -> (parent pid, process group)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def _kill_and_wait(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + _GONE_WITHIN_S
    while time.monotonic() < deadline and pids & set(_process_table()):
        time.sleep(0.05)
