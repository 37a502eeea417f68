"""The cost ledger and budgets: every turn's cost and tokens per model, totalled by GetUsage; a turn past a
team's or a key's budget is refused with BudgetExceededError naming the budget and when it resets."""

from __future__ import annotations

import asyncio
import calendar
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.harness import Iris, error_details, error_reason, start_iris, with_key, write_config


@asynccontextmanager
async def as_key(
    iris: Iris, name: str, *permissions: str, daily_usd: float = 0.0, monthly_usd: float = 0.0
) -> AsyncIterator[iris_pb2_grpc.IrisAsyncStub]:
    request = pb.CreateApiKeyRequest(
        name=name, permissions=list(permissions), daily_budget_usd=daily_usd, monthly_budget_usd=monthly_usd
    )
    created = await iris.stub.CreateApiKey(request)
    async with grpc.aio.insecure_channel(iris.target, interceptors=with_key(created.key)) as channel:
        yield iris_pb2_grpc.IrisStub(channel)


async def say(stub: iris_pb2_grpc.IrisAsyncStub, text: str, team: str = "alpha") -> pb.SendMessageResponse:
    return await stub.SendMessage(pb.SendMessageRequest(to_team=team, message=f"say {text}"))


async def test_get_usage_totals_every_turn_by_team_key_day_and_model(iris: Iris) -> None:
    async with as_key(iris, "ci-bot", "team:tell", "status:read") as bot:
        await say(bot, "one")
        await say(bot, "two", team="beta")
    await say(iris.stub, "three")
    usage = await iris.stub.GetUsage(pb.GetUsageRequest(group_by=["team", "key", "day", "model"]))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    seen = {(r.team, r.key, r.day, r.turns) for r in usage.rows}
    assert seen == {("alpha", "admin", today, 1), ("alpha", "ci-bot", today, 1), ("beta", "ci-bot", today, 1)}
    assert all(r.model and r.cost_usd > 0 and r.usage.input_tokens > 0 for r in usage.rows)
    assert usage.total.turns == 3
    assert usage.total.cost_usd == pytest.approx(sum(r.cost_usd for r in usage.rows))
    assert usage.total.usage.output_tokens == sum(r.usage.output_tokens for r in usage.rows)
    assert usage.until > usage.since
    # The ledger agrees with what each turn reported.
    listing = await iris.stub.ListMessages(pb.ListMessagesRequest(limit=10))
    assert usage.total.cost_usd == pytest.approx(sum(m.metadata.cost_usd for m in listing.messages))
    by_pair = await iris.stub.GetUsage(pb.GetUsageRequest(group_by=["from_team"], team="alpha"))
    assert {(r.from_team, r.turns) for r in by_pair.rows} == {("admin", 1), ("ci-bot", 1)}


async def test_a_key_without_admin_sees_only_its_own_usage(iris: Iris) -> None:
    await say(iris.stub, "admin's")
    async with as_key(iris, "reader", "team:tell", "status:read") as reader:
        await say(reader, "mine")
        own = await reader.GetUsage(pb.GetUsageRequest(group_by=["key"]))
        assert [(r.key, r.turns) for r in own.rows] == [("reader", 1)]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await reader.GetUsage(pb.GetUsageRequest(key="admin"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_bad_grouping_or_range_is_refused_naming_the_field(iris: Iris) -> None:
    for request, field in [
        (pb.GetUsageRequest(group_by=["week"]), "groupBy"),
        (pb.GetUsageRequest(since=2_000, until=1_000), "since"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await iris.stub.GetUsage(request)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_details(refused.value)["field"] == field


def next_utc_midnight_ms() -> int:
    t = time.gmtime()
    return (calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)) + 86_400) * 1000


async def test_a_team_past_its_daily_budget_refuses_the_next_turn_until_the_day_ends(tmp_path: Path) -> None:
    # One offline turn costs about $0.04: the first runs, and the next is past a $0.01 budget.
    config = write_config(tmp_path, teams={"alpha": {"budget": {"dailyUsd": 0.01}}})
    async with start_iris(tmp_path, config) as iris:
        assert (await say(iris.stub, "spent")).status == "completed"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await say(iris.stub, "refused")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_reason(refused.value) == "BudgetExceededError"
        details = error_details(refused.value)
        assert details["budget"] == "team alpha daily"
        assert details["limitUsd"] == "0.01"
        assert float(details["spentUsd"]) > 0.01
        assert int(details["resetsAt"]) == next_utc_midnight_ms()
        # Another team has no budget; the refused message was never recorded.
        assert (await say(iris.stub, "fine", team="beta")).status == "completed"
        listing = await iris.stub.ListMessages(pb.ListMessagesRequest(team="alpha"))
        assert [m.message for m in listing.messages] == ["say spent"]


async def test_a_key_past_its_budget_is_refused_while_other_keys_go_on(iris: Iris) -> None:
    async with as_key(iris, "thrifty", "team:tell", daily_usd=0.01) as thrifty:
        await say(thrifty, "first")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await thrifty.Ask(pb.AskRequest(team="beta", question="say second"))
        assert error_reason(refused.value) == "BudgetExceededError"
        assert error_details(refused.value)["budget"] == "key thrifty daily"
        with pytest.raises(grpc.aio.AioRpcError):
            await thrifty.Execute(pb.ExecuteRequest(team="beta", task="say third"))
    assert (await say(iris.stub, "others go on")).status == "completed"
    keys = await iris.stub.ListApiKeys(pb.ListApiKeysRequest())
    assert [k.daily_budget_usd for k in keys.keys if k.name == "thrifty"] == [0.01]


async def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    async with start_iris(tmp_path) as iris:
        await say(iris.stub, "before")
        before = await iris.stub.GetUsage(pb.GetUsageRequest())
    async with start_iris(tmp_path) as iris:
        after = await iris.stub.GetUsage(pb.GetUsageRequest())
    assert after.total.turns == before.total.turns == 1
    assert after.total.cost_usd == before.total.cost_usd > 0


async def test_team_status_shows_the_memory_of_an_awake_process(iris: Iris) -> None:
    await say(iris.stub, "awake")
    status = await iris.stub.TeamStatus(pb.TeamStatusRequest(team="alpha"))
    entry = status.teams[0]
    assert entry.awake and entry.pid > 0
    assert 10_000_000 < entry.memory_bytes < 2_000_000_000


def command_line(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


async def test_a_per_turn_cap_is_passed_to_claude_code(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"maxTurnBudgetUsd": 2.5}})
    async with start_iris(tmp_path, config) as iris:
        await say(iris.stub, "capped")
        status = await iris.stub.TeamStatus(pb.TeamStatusRequest(team="alpha"))
        argv = command_line(status.teams[0].pid)
    assert argv[argv.index(b"--max-budget-usd") + 1] == b"2.5"


async def test_messages_sent_together_do_not_start_past_the_budget(iris: Iris) -> None:
    # All three are accepted before any has cost anything; the pair runs them one by one, and each is checked
    # again as it is about to start.
    async with as_key(iris, "eager", "team:tell", daily_usd=0.01) as eager:
        results = await asyncio.gather(
            *(say(eager, f"together {n}") for n in range(3)), return_exceptions=True
        )
    completed = [r for r in results if isinstance(r, pb.SendMessageResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(completed) == 1 and len(refused) == 2, results
    assert {error_reason(r) for r in refused} == {"BudgetExceededError"}
    usage = await iris.stub.GetUsage(pb.GetUsageRequest(key="eager"))
    assert usage.total.turns == 1


async def test_a_team_budget_refusal_tells_a_key_without_admin_no_team_spending(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"budget": {"monthlyUsd": 0.01}}})
    async with start_iris(tmp_path, config) as iris:
        await say(iris.stub, "spent by admin")
        async with as_key(iris, "plain", "team:tell") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await say(plain, "refused")
    details = error_details(refused.value)
    assert details["budget"] == "team alpha monthly"
    assert "spentUsd" not in details
    assert "spent" not in (refused.value.details() or "")


async def test_a_turn_that_kills_its_own_process_is_charged_the_teams_recent_average(iris: Iris) -> None:
    first = await say(iris.stub, "a normal turn")
    with pytest.raises(grpc.aio.AioRpcError):
        await iris.stub.SendMessage(
            pb.SendMessageRequest(to_team="alpha", message='tool Bash {"command": "kill -9 $PPID"}')
        )
    usage = await iris.stub.GetUsage(pb.GetUsageRequest(group_by=["model"]))
    estimated = [r for r in usage.rows if r.model == "estimated"]
    assert len(estimated) == 1 and estimated[0].turns == 1
    assert first.cost_usd > 0
    assert estimated[0].cost_usd == pytest.approx(first.cost_usd)


async def test_key_names_of_teams_own_claude_are_reserved(iris: Iris) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name="mcp.alpha", permissions=["team:tell"]))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
