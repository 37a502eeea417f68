"""Sessions, team lifecycles and system RPCs over gRPC, against real Claude Code and the offline model."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.harness import (
    TEAMS,
    Iris,
    error_reason,
    report_of,
    send,
    start_iris,
    status_of,
    wait_until_gone,
    wait_until_running,
    write_config,
)

CALLER = "caller"


def reaped(pid: int) -> bool:
    """True once ``pid`` is gone from /proc: exited and reaped, no zombie left behind."""
    return not Path(f"/proc/{pid}").exists()


async def wait_until_reaped(pid: int) -> None:
    """Wait (bounded) until ``pid`` has exited, then require it reaped."""
    await wait_until_gone(pid)
    assert reaped(pid), f"{pid} exited but was not reaped"


def transcripts(root: Path, session_id: str) -> list[Path]:
    return sorted((root / "claude-home" / ".claude" / "projects").glob(f"*/{session_id}.jsonl"))


async def wait_for_transcripts(root: Path, session_id: str) -> list[Path]:
    async with asyncio.timeout(10):
        while not (found := transcripts(root, session_id)):
            await asyncio.sleep(0.02)
    return found


def write_spawn_script(iris: Iris, body: str, *, executable: bool = True) -> Path:
    script = iris.home / "scripts" / "spawn.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!/bin/sh\n{body}\n")
    mode = 0o755 if executable else 0o644
    script.chmod(mode)
    return script


# --- SessionReboot -----------------------------------------------------------------------------------------


async def test_reboot_replaces_the_session_and_forgets_the_conversation(iris: Iris, tmp_path: Path) -> None:
    first = await send(iris, "remember kiwi")
    old_files = await wait_for_transcripts(tmp_path, first.session_id)
    old_pid = (await status_of(iris)).pid

    reboot = await iris.stub.SessionReboot(pb.SessionRebootRequest(to_team="alpha", from_team=CALLER))

    assert reboot.had_previous_session and reboot.process_terminated
    assert reboot.old_session_id == first.session_id
    assert reboot.new_session_id and reboot.new_session_id != first.session_id
    assert (reboot.from_team, reboot.to_team) == (CALLER, "alpha")
    assert not any(path.exists() for path in old_files)
    assert transcripts(tmp_path, first.session_id) == []
    await wait_until_reaped(old_pid)
    report = await report_of(iris)
    assert report.session_id == reboot.new_session_id
    assert list(report.entries) == [] and not report.has_cache
    after = await send(iris, "recall")
    assert after.response == "you told me: nothing"
    assert after.session_id == reboot.new_session_id
    assert [e.message_id for e in (await report_of(iris)).entries] == [after.message_id]


async def test_reboot_of_a_pair_without_a_session_creates_one(iris: Iris) -> None:
    reboot = await iris.stub.SessionReboot(pb.SessionRebootRequest(to_team="beta", from_team=CALLER))
    assert not reboot.had_previous_session and reboot.old_session_id == ""
    assert not reboot.process_terminated
    assert reboot.new_session_id
    assert (await status_of(iris, "beta")).session_id == reboot.new_session_id


async def test_reboots_and_deletes_of_many_pairs_at_once_all_succeed(iris: Iris) -> None:
    # Each removes its session in a transaction on the one shared connection: they must not overlap.
    pairs = [(team, f"caller{i}") for i in range(3) for team in TEAMS]

    async def reboot(team: str, caller: str) -> pb.SessionRebootResponse:
        return await iris.stub.SessionReboot(pb.SessionRebootRequest(to_team=team, from_team=caller))

    async def delete(team: str, caller: str) -> pb.SessionDeleteResponse:
        return await iris.stub.SessionDelete(pb.SessionDeleteRequest(to_team=team, from_team=caller))

    assert all(r.new_session_id for r in await asyncio.gather(*(reboot(*pair) for pair in pairs)))
    assert all(r.had_previous_session for r in await asyncio.gather(*(reboot(*pair) for pair in pairs)))
    assert all(d.had_session for d in await asyncio.gather(*(delete(*pair) for pair in pairs)))


# --- SessionDelete -----------------------------------------------------------------------------------------


async def test_delete_stops_the_process_and_removes_the_session_without_a_replacement(
    iris: Iris, tmp_path: Path
) -> None:
    first = await send(iris, "remember fig")
    old_files = await wait_for_transcripts(tmp_path, first.session_id)
    pid = (await status_of(iris)).pid

    deleted = await iris.stub.SessionDelete(pb.SessionDeleteRequest(to_team="alpha", from_team=CALLER))

    assert deleted.had_session and deleted.process_terminated
    assert deleted.session_id == first.session_id
    assert not any(path.exists() for path in old_files)
    report = await report_of(iris)
    assert not report.has_cache and list(report.entries) == [] and report.session_id == ""
    status = await status_of(iris)
    assert status.session_id == "" and not status.awake and status.pid == 0
    await wait_until_reaped(pid)


async def test_delete_of_a_pair_that_never_had_a_session_says_so(iris: Iris) -> None:
    deleted = await iris.stub.SessionDelete(pb.SessionDeleteRequest(to_team="gamma", from_team="nobody"))
    assert not deleted.had_session and deleted.session_id == ""
    assert not deleted.process_terminated


# --- SessionFork -------------------------------------------------------------------------------------------


async def fork_failure(iris: Iris) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await iris.stub.SessionFork(pb.SessionForkRequest(to_team="alpha", from_team=CALLER))
    return failure.value


async def test_fork_without_a_spawn_script_fails_its_precondition(iris: Iris) -> None:
    await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))
    failure = await fork_failure(iris)
    assert failure.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(failure) == "PreconditionFailedError"


async def test_fork_with_a_spawn_script_that_is_not_executable_fails_its_precondition(iris: Iris) -> None:
    await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))
    script = write_spawn_script(iris, "exit 0", executable=False)
    assert not script.stat().st_mode & stat.S_IXUSR
    failure = await fork_failure(iris)
    assert failure.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(failure) == "PreconditionFailedError"


async def test_fork_of_a_pair_without_a_session_is_not_found(iris: Iris) -> None:
    write_spawn_script(iris, "exit 0")
    failure = await fork_failure(iris)
    assert failure.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(failure) == "SessionNotFoundError"


async def test_fork_runs_the_spawn_script_with_team_path_and_a_resume_fork_command(
    iris: Iris, tmp_path: Path
) -> None:
    args_file = tmp_path / "spawn-args.txt"
    write_spawn_script(iris, f'printf \'%s\\n\' "$#" "$1" "$2" "$3" "$4" > \'{args_file}\'')
    woke = await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))

    fork = await iris.stub.SessionFork(pb.SessionForkRequest(to_team="alpha", from_team=CALLER))

    team_path = str((tmp_path / "teams" / "alpha").resolve())
    assert fork.success
    assert fork.session_id == woke.session_id
    assert fork.team_path == team_path and not fork.remote and fork.ssh_host == ""
    count, path, command, ssh_host, ssh_options = args_file.read_text().split("\n")[:5]
    assert count == "4"
    assert path == team_path
    assert f"--resume {woke.session_id} --fork-session" in command
    assert command.split()[0] == "claude"
    assert (ssh_host, ssh_options) == ("", "")


async def test_fork_reports_a_failing_spawn_script_as_unsuccessful_and_logs_its_output(
    iris: Iris, caplog: pytest.LogCaptureFixture
) -> None:
    write_spawn_script(iris, f"echo no terminal in {iris.home}; exit 3")
    await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))
    with caplog.at_level(logging.WARNING, logger="iris_core.fork"):
        fork = await iris.stub.SessionFork(pb.SessionForkRequest(to_team="alpha", from_team=CALLER))
    assert not fork.success
    assert "code 3" in fork.message
    assert str(iris.home) not in fork.message, "the script's output may name server paths: log only"
    assert any("no terminal in" in r.getMessage() for r in caplog.records)


async def test_fork_returns_at_once_when_the_script_leaves_a_terminal_running(
    iris: Iris, tmp_path: Path
) -> None:
    pid_file = tmp_path / "terminal.pid"
    write_spawn_script(iris, f"sleep 60 & echo $! > {pid_file}")
    await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))
    try:
        async with asyncio.timeout(10):
            fork = await iris.stub.SessionFork(pb.SessionForkRequest(to_team="alpha", from_team=CALLER))
        assert fork.success
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), 9)


# --- TeamWake, TeamLaunch, TeamSleep -----------------------------------------------------------------------


async def test_wake_starts_a_live_process_and_a_second_wake_or_launch_reuses_it(iris: Iris) -> None:
    woke = await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))
    assert woke.status == "awake" and woke.team == "alpha"
    assert woke.pid > 0 and woke.session_id
    os.kill(woke.pid, 0)
    again = await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))
    launched = await iris.stub.TeamLaunch(pb.TeamLaunchRequest(team="alpha", from_team=CALLER))
    assert (again.pid, again.session_id) == (woke.pid, woke.session_id)
    assert (launched.status, launched.pid, launched.session_id) == ("awake", woke.pid, woke.session_id)
    status = await status_of(iris)
    assert status.awake and status.state == "idle" and status.pid == woke.pid


async def test_launch_starts_a_process_like_wake(iris: Iris) -> None:
    launched = await iris.stub.TeamLaunch(pb.TeamLaunchRequest(team="beta", from_team=CALLER))
    assert launched.status == "awake" and launched.pid > 0 and launched.session_id
    os.kill(launched.pid, 0)
    assert (await status_of(iris, "beta")).pid == launched.pid


async def test_sleep_stops_and_reaps_the_process_and_a_second_sleep_says_already_asleep(iris: Iris) -> None:
    woke = await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))
    slept = await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team=CALLER))
    assert slept.status == "asleep" and slept.team == "alpha"
    again = await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team=CALLER))
    assert again.status == "already_asleep"
    await wait_until_reaped(woke.pid)
    status = await status_of(iris)
    assert not status.awake and status.state == "stopped" and status.pid == 0
    assert status.session_id == woke.session_id


async def test_sleep_refuses_a_busy_pair_unless_forced_and_force_cancels_the_turn(iris: Iris) -> None:
    queued = await send(iris, "slow 100 100", timeout_ms=-1)
    await wait_until_running(iris)
    pid = (await status_of(iris)).pid

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team=CALLER))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(refused.value) == "PreconditionFailedError"
    assert (await status_of(iris)).notifications.running == 1

    forced = await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team=CALLER, force=True))
    assert forced.status == "asleep"
    async with asyncio.timeout(10):
        while True:
            [entry] = (await report_of(iris)).entries
            if entry.status not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
    assert entry.message_id == queued.message_id
    assert entry.status == "cancelled"
    await wait_until_reaped(pid)


# --- TeamWakeAll -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
async def test_wake_all_wakes_every_team_and_reports_them_in_config_order(iris: Iris, parallel: bool) -> None:
    woke = await iris.stub.TeamWakeAll(pb.TeamWakeAllRequest(from_team=CALLER, parallel=parallel))
    assert [r.team for r in woke.results] == list(TEAMS)
    assert all(r.success and r.status == "awake" and r.session_id for r in woke.results)
    assert (woke.total_teams, woke.success_count, woke.failure_count) == (3, 3, 0)
    pids = [r.pid for r in woke.results]
    assert len(set(pids)) == 3 and all(pid > 0 for pid in pids)
    for pid in pids:
        os.kill(pid, 0)
    status = await iris.stub.TeamStatus(pb.TeamStatusRequest(from_team=CALLER))
    assert [(e.name, e.awake, e.pid) for e in status.teams] == list(zip(TEAMS, [True] * 3, pids, strict=True))


# --- TeamStatus --------------------------------------------------------------------------------------------


async def test_status_of_one_team_has_awake_and_exactly_that_team(iris: Iris) -> None:
    asleep = await iris.stub.TeamStatus(pb.TeamStatusRequest(from_team=CALLER, team="beta"))
    assert asleep.team == "beta" and asleep.HasField("awake") and not asleep.awake
    assert [e.name for e in asleep.teams] == ["beta"]
    assert asleep.teams[0].state == "stopped" and asleep.teams[0].session_id == ""

    woke = await iris.stub.TeamWake(pb.TeamWakeRequest(team="beta", from_team=CALLER))
    awake = await iris.stub.TeamStatus(pb.TeamStatusRequest(from_team=CALLER, team="beta"))
    assert awake.HasField("awake") and awake.awake
    [entry] = awake.teams
    assert (entry.name, entry.awake, entry.pid, entry.session_id) == ("beta", True, woke.pid, woke.session_id)
    assert entry.HasField("notifications")
    assert (entry.notifications.pending, entry.notifications.running) == (0, 0)


async def test_status_of_all_teams_lists_every_team_without_a_single_awake_flag(iris: Iris) -> None:
    status = await iris.stub.TeamStatus(pb.TeamStatusRequest(from_team=CALLER))
    assert [e.name for e in status.teams] == list(TEAMS)
    assert status.team == "" and not status.HasField("awake")
    assert all(e.HasField("notifications") for e in status.teams)


async def test_status_without_notifications_omits_them(iris: Iris) -> None:
    one = await iris.stub.TeamStatus(
        pb.TeamStatusRequest(from_team=CALLER, team="alpha", include_notifications=False)
    )
    every = await iris.stub.TeamStatus(pb.TeamStatusRequest(from_team=CALLER, include_notifications=False))
    assert len(one.teams) == 1 and len(every.teams) == 3
    assert not any(e.HasField("notifications") for e in [*one.teams, *every.teams])


# --- idle timeout ------------------------------------------------------------------------------------------


async def test_an_idle_process_stops_by_itself_and_the_next_message_keeps_the_conversation(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, teams={"alpha": {"idleTimeout": 300}})
    async with start_iris(tmp_path, config) as iris:
        first = await send(iris, "remember lime")
        woke = await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))
        async with asyncio.timeout(10):
            while (status := await status_of(iris)).state != "stopped":
                await asyncio.sleep(0.05)
        assert not status.awake and status.pid == 0
        assert status.session_id == first.session_id
        await wait_until_reaped(woke.pid)
        again = await send(iris, "recall")
        assert again.response == "you told me: lime"
        assert again.session_id == first.session_id


# --- ListTeams, GetDate ------------------------------------------------------------------------------------


async def test_list_teams_gives_each_team_with_path_description_and_permission(
    iris: Iris, tmp_path: Path
) -> None:
    listed = await iris.stub.ListTeams(pb.ListTeamsRequest())
    assert listed.total_teams == 3
    assert [(t.name, t.path, t.description, t.grant_permission) for t in listed.teams] == [
        (name, str((tmp_path / "teams" / name).resolve()), f"team {name}", "yes") for name in TEAMS
    ]


async def test_get_date_gives_one_instant_in_consistent_forms(iris: Iris) -> None:
    before = int(time.time() * 1000)
    date = await iris.stub.GetDate(pb.GetDateRequest())
    after = int(time.time() * 1000)
    assert before <= date.timestamp <= after
    assert date.unix == date.timestamp // 1000
    seconds, millis = divmod(date.timestamp, 1000)
    instant = datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=millis)
    assert datetime.fromisoformat(date.iso) == instant
    assert date.iso.endswith("Z")
    assert email.utils.parsedate_to_datetime(date.utc) == instant.replace(microsecond=0)
    assert (date.year, date.month, date.day) == (instant.year, instant.month, instant.day)
    assert (date.hour, date.minute, date.second) == (instant.hour, instant.minute, instant.second)
    assert date.timezone


# --- GetLogs -----------------------------------------------------------------------------------------------


async def logs(iris: Iris, request: pb.GetLogsRequest) -> pb.GetLogsResponse:
    return await iris.stub.GetLogs(request)


@pytest.fixture
async def logged(iris: Iris) -> AsyncIterator[Iris]:
    """The iris fixture with its log ring attached to the root logger at DEBUG, as the CLI does."""
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(iris.logs)
    root.setLevel(logging.DEBUG)
    try:
        yield iris
    finally:
        root.removeHandler(iris.logs)
        root.setLevel(old_level)


async def test_logs_record_the_start_of_a_claude_code_process(logged: Iris) -> None:
    started = int(time.time() * 1000)
    await send(logged, "say hi")
    found = await logs(logged, pb.GetLogsRequest(store_name="iris"))
    starts = [r for r in found.logs if "Claude Code process" in r.msg and "started" in r.msg]
    assert len(starts) == 1
    [start] = starts
    assert start.level == "info" and start.store == "iris" and start.logger.startswith("iris_core.")
    assert start.time >= started
    assert str((await status_of(logged)).pid) in start.msg
    assert found.count == len(found.logs) and all(r.store == "iris" for r in found.logs)
    times = [r.time for r in found.logs]
    assert times == sorted(times)


async def test_log_level_and_since_filters_keep_only_matching_records(logged: Iris) -> None:
    write_spawn_script(logged, "exit 7")
    await send(logged, "say hi")
    fork = await logged.stub.SessionFork(pb.SessionForkRequest(to_team="alpha", from_team=CALLER))
    assert not fork.success  # the failing script is logged as a warning

    serious = await logs(logged, pb.GetLogsRequest(level=["warn", "error"]))
    assert serious.logs and {r.level for r in serious.logs} <= {"warn", "error"}
    assert any("spawn script" in r.msg for r in serious.logs)
    everything = await logs(logged, pb.GetLogsRequest())
    assert len(everything.logs) > len(serious.logs)
    future = await logs(logged, pb.GetLogsRequest(logs_since=int(time.time() * 1000) + 60_000))
    assert list(future.logs) == [] and future.count == 0
    last = everything.logs[-1].time
    since = await logs(logged, pb.GetLogsRequest(logs_since=last))
    assert since.logs and all(r.time >= last for r in since.logs)


async def test_get_all_stores_lists_the_store_names(logged: Iris) -> None:
    await send(logged, "say hi")
    stores = await logs(logged, pb.GetLogsRequest(get_all_stores=True))
    assert "iris" in stores.stores
    assert list(stores.logs) == []
    assert list(stores.stores) == sorted(set(stores.stores))


async def test_raw_format_gives_fields_and_parsed_format_gives_text(logged: Iris) -> None:
    logging.getLogger("iris_core.probe").info("probe %s", "record", extra={"team": "alpha", "pid": 7})
    raw = await logs(logged, pb.GetLogsRequest(format="raw"))
    parsed = await logs(logged, pb.GetLogsRequest(format="parsed"))
    default = await logs(logged, pb.GetLogsRequest())
    [raw_probe] = [r for r in raw.logs if r.logger == "iris_core.probe"]
    [parsed_probe] = [r for r in parsed.logs if r.logger == "iris_core.probe"]
    assert raw_probe.HasField("fields") and raw_probe.text == ""
    assert dict(raw_probe.fields) == {"team": "alpha", "pid": 7}
    assert not parsed_probe.HasField("fields")
    assert parsed_probe.text.endswith("INFO  [iris_core.probe] probe record team=alpha pid=7")
    assert all(r.text and not r.HasField("fields") for r in default.logs)


@pytest.mark.parametrize(
    "bad",
    [
        pb.GetLogsRequest(level=["verbose"]),
        pb.GetLogsRequest(level=["info", "loud"]),
        pb.GetLogsRequest(format="xml"),
    ],
    ids=["level", "one-of-two-levels", "format"],
)
async def test_an_unknown_log_level_or_format_is_invalid(iris: Iris, bad: pb.GetLogsRequest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await logs(iris, bad)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "ValidationError"


# --- unknown teams -----------------------------------------------------------------------------------------


async def _consume_tell(stub: iris_pb2_grpc.IrisAsyncStub, team: str) -> object:
    return [e async for e in stub.Tell(pb.TellRequest(to_team=team, from_team=CALLER, message="say hi"))]


TEAM_RPCS: dict[str, Callable[[iris_pb2_grpc.IrisAsyncStub, str], Awaitable[object]]] = {
    "SendMessage": lambda s, t: s.SendMessage(
        pb.SendMessageRequest(to_team=t, from_team=CALLER, message="hi")
    ),
    "AskMessage": lambda s, t: s.AskMessage(pb.AskMessageRequest(to_team=t, from_team=CALLER, message="hi")),
    "QuickMessage": lambda s, t: s.QuickMessage(
        pb.QuickMessageRequest(to_team=t, from_team=CALLER, message="hi")
    ),
    "Tell": _consume_tell,
    "SessionCancel": lambda s, t: s.SessionCancel(pb.SessionCancelRequest(team=t, from_team=CALLER)),
    "SessionReboot": lambda s, t: s.SessionReboot(pb.SessionRebootRequest(to_team=t, from_team=CALLER)),
    "SessionDelete": lambda s, t: s.SessionDelete(pb.SessionDeleteRequest(to_team=t, from_team=CALLER)),
    "SessionFork": lambda s, t: s.SessionFork(pb.SessionForkRequest(to_team=t, from_team=CALLER)),
    "SessionReport": lambda s, t: s.SessionReport(pb.SessionReportRequest(team=t, from_team=CALLER)),
    "TeamWake": lambda s, t: s.TeamWake(pb.TeamWakeRequest(team=t, from_team=CALLER)),
    "TeamLaunch": lambda s, t: s.TeamLaunch(pb.TeamLaunchRequest(team=t, from_team=CALLER)),
    "TeamSleep": lambda s, t: s.TeamSleep(pb.TeamSleepRequest(team=t, from_team=CALLER)),
    "TeamStatus": lambda s, t: s.TeamStatus(pb.TeamStatusRequest(team=t, from_team=CALLER)),
}


@pytest.mark.parametrize("rpc", list(TEAM_RPCS))
async def test_an_unknown_team_is_not_found_on_every_rpc_that_names_a_team(iris: Iris, rpc: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        async with asyncio.timeout(30):
            await TEAM_RPCS[rpc](iris.stub, "nosuchteam")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(missing.value) == "TeamNotFoundError"
