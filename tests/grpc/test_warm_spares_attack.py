"""Attacks on warm spares: hand-over paths that could share a session id between two processes, lose a
conversation, or leak a slot."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_core.config import TeamConfig
from iris_core.placement import TeamProcess
from iris_core.slots import ProcessSlots
from iris_core.spares import DeferredPermission
from iris_core.turns import Pair
from tests.grpc.test_warm_spares import processes_in
from tests.harness import live_processes_in, process_alive, send, start_iris, status_of, write_config


def hold_spare_starts(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make every warm spare's start wait until the returned event is set."""
    gate = asyncio.Event()
    real = ProcessSlots._launch_spare

    async def slow_spare(
        self: ProcessSlots, team: TeamConfig, session_id: str, permission: DeferredPermission
    ) -> TeamProcess:
        await gate.wait()
        return await real(self, team, session_id, permission)

    monkeypatch.setattr(ProcessSlots, "_launch_spare", slow_spare)
    return gate


async def test_a_wake_of_a_new_pair_takes_the_spare_and_the_conversation_survives_a_sleep(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, teams={"alpha": {"warmSpares": 1}})
    async with start_iris(tmp_path, config) as iris:
        alpha = iris.config.teams["alpha"].path
        [spare] = await processes_in(alpha, 1)

        woke = await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team="first"))
        reply = await send(iris, "remember plum", frm="first")
        assert reply.status == "completed"
        await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team="first"))
        recalled = await send(iris, "recall", frm="first")

        assert woke.pid == spare  # the wake took the spare promised to the pair, rather than a cold start
        assert recalled.response == "you told me: plum"  # not a spare left promised under the same session


async def test_a_pair_waiting_for_its_spare_to_start_survives_the_spare_being_evicted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = hold_spare_starts(monkeypatch)  # a slow start (a remote host, a loaded machine)
    config = write_config(
        tmp_path, settings={"maxProcesses": 2, "admissionTimeout": 15000}, teams={"alpha": {"warmSpares": 1}}
    )
    async with start_iris(tmp_path, config) as iris:
        spares = iris.running.service.teams._pool._slots.spares
        async with asyncio.timeout(10):
            while spares.count != 1:
                await asyncio.sleep(0.02)
        first = asyncio.ensure_future(send(iris, "remember plum", frm="first", timeout_ms=40_000))
        async with asyncio.timeout(
            10
        ):  # promised to first, which waits for it; a second spare fills the room
            while spares.count != 2:
                await asyncio.sleep(0.02)
        # Two other pairs need room: both spares are evicted, the promised one (still starting) last.
        others = [send(iris, "hello", to=t, frm="other", timeout_ms=30_000) for t in ("beta", "gamma")]
        replies = await asyncio.gather(*others)
        assert all(r.status == "completed" for r in replies)
        gate.set()

        async with asyncio.timeout(50):
            reply = await first
        assert reply.status == "completed", reply


async def test_a_spare_too_slow_for_its_pair_is_stopped_and_never_handed_over_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = hold_spare_starts(monkeypatch)  # slower than spawnTimeout: the pair gives up and starts its own
    config = write_config(tmp_path, settings={"spawnTimeout": 8000}, teams={"alpha": {"warmSpares": 1}})
    async with start_iris(tmp_path, config) as iris:
        alpha = iris.config.teams["alpha"].path
        spares = iris.running.service.teams._pool._slots.spares
        async with asyncio.timeout(10):
            while spares.count != 1:
                await asyncio.sleep(0.02)

        reply = await send(iris, "remember plum", frm="first", timeout_ms=40_000)
        assert reply.status == "completed"
        own = (await status_of(iris, "alpha", "first")).pid
        assert not spares.promised(Pair("first", "alpha"))  # the slow spare under the pair's session went
        gate.set()  # the spare promised under the pair's session would start now, were it not stopped
        await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team="first"))
        recalled = await send(iris, "recall", frm="first", timeout_ms=40_000)

        assert recalled.response == "you told me: plum"
        assert (await status_of(iris, "alpha", "first")).pid != own
        sessions = [p for p in live_processes_in(alpha) if reply.session_id in _cmdline(p)]
        assert len(sessions) <= 1  # never two Claude Code processes under one session


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def test_many_new_pairs_at_once_never_exceed_max_processes_and_share_nothing(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, settings={"maxProcesses": 2}, teams={"alpha": {"warmSpares": 2}, "beta": {"warmSpares": 1}}
    )
    async with start_iris(tmp_path, config) as iris:
        teams = iris.config.teams["alpha"].path.parent
        await processes_in(teams, 2)  # the room is all spares
        most = 0
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal most
            while not done.is_set():
                most = max(most, len(live_processes_in(teams)))
                await asyncio.sleep(0.005)

        sampler = asyncio.ensure_future(sample())
        try:
            callers = [f"c{i}" for i in range(6)]
            remembered = await asyncio.gather(
                *(
                    send(iris, f"remember w{c}", frm=c, to=t, timeout_ms=90_000)
                    for c in callers
                    for t in ("alpha", "beta")
                )
            )
            assert all(r.status == "completed" for r in remembered)
            sessions = [r.session_id for r in remembered]
            assert len(set(sessions)) == len(sessions)  # one session per pair, none shared
            recalled = await asyncio.gather(
                *(
                    send(iris, "recall", frm=c, to=t, timeout_ms=90_000)
                    for c in callers
                    for t in ("alpha", "beta")
                )
            )
            assert [r.response for r in recalled] == [f"you told me: w{c}" for c in callers for _ in (0, 1)]
        finally:
            done.set()
            await sampler
        assert most <= 2


async def test_a_spare_that_dies_as_soon_as_it_started_is_not_replaced_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"warmSpares": 1}})
    async with start_iris(tmp_path, config) as iris:
        spares = iris.running.service.teams._pool._slots.spares
        async with asyncio.timeout(30):
            while spares.ready("alpha") != 1:
                await asyncio.sleep(0.02)
        [spare] = live_processes_in(iris.config.teams["alpha"].path)

        os.kill(spare, signal.SIGKILL)  # a team whose Claude Code dies right after its start, every time

        async with asyncio.timeout(20):  # reaped, and no new one started in a loop (a failed start's pause)
            while spares.count:
                await asyncio.sleep(0.02)
        assert process_alive(spare) is False
        reply = await send(iris, "hello", frm="first")  # a pair is still served, cold
        assert reply.status == "completed"


async def test_a_shutdown_stops_every_spare_promised_or_not(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"warmSpares": 2}, "beta": {"warmSpares": 1}})
    async with start_iris(tmp_path, config) as iris:
        teams = iris.config.teams["alpha"].path.parent
        await processes_in(teams, 3)
        # A session created without a start (a reboot's wake refused here would do the same): its spare is
        # promised and waits.
        await iris.running.service.teams._store.get_or_create_session("first", "alpha")
        assert iris.running.service.teams._pool._slots.spares.promised(Pair("first", "alpha"))
        spares = set(live_processes_in(teams))
    assert not [pid for pid in spares if process_alive(pid)]
    assert not live_processes_in(teams)


async def test_a_spare_promised_to_a_deleted_session_is_never_handed_over(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"warmSpares": 1}})
    async with start_iris(tmp_path, config) as iris:
        alpha = iris.config.teams["alpha"].path
        spares = iris.running.service.teams._pool._slots.spares
        [stale] = await processes_in(alpha, 1)
        # A session is created and its spare promised, but the pair never starts (say, its job waits in the
        # job queue), then the session is deleted.
        old = await iris.running.service.teams._store.get_or_create_session("first", "alpha")
        await processes_in(alpha, 2)  # a spare behind the promised one
        deleted = await iris.stub.SessionDelete(pb.SessionDeleteRequest(from_team="first", to_team="alpha"))
        assert deleted.session_id == old.session_id

        reply = await send(iris, "remember plum", frm="first")
        await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team="first"))
        recalled = await send(iris, "recall", frm="first")

        assert reply.session_id != old.session_id
        assert recalled.response == "you told me: plum"
        assert not process_alive(stale)  # the spare of the deleted session went: its id is never reused
        assert not spares.promised(Pair("first", "alpha"))
