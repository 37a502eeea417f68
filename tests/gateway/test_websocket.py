"""The WebSocket /api/v1/stream: subscribe, message, chunks to complete, cancel, bad frames, both auths."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import Gateway


def ws_url(gateway: Gateway) -> str:
    return gateway.url.replace("http://", "ws://") + "/api/v1/stream"


async def frames_until(socket: ClientConnection, done: str, within_s: float = 60) -> list[dict[str, Any]]:
    """Read frames until one of type ``done`` (inclusive)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(within_s):
        while True:
            frame = json.loads(await socket.recv())
            seen.append(frame)
            if frame["type"] == done:
                return seen


async def test_subscribe_then_message_streams_chunks_to_complete_with_the_teams_events(
    gateway: Gateway,
) -> None:
    headers = {"Authorization": f"Bearer {gateway.iris.admin_key}"}
    async with connect(ws_url(gateway), additional_headers=headers) as socket:
        await socket.send(json.dumps({"type": "subscribe", "team": "alpha"}))
        assert (await frames_until(socket, "subscribed"))[-1] == {"type": "subscribed", "team": "alpha"}
        await socket.send(json.dumps({"type": "message", "team": "alpha", "message": "chunks one|two|three"}))
        frames = await frames_until(socket, "complete")
    replies = [f for f in frames if f["type"] != "event"]
    message_id = replies[0]["messageId"]
    assert [f["type"] for f in replies] == ["start", "chunk", "chunk", "chunk", "complete"]
    assert [f["text"] for f in replies if f["type"] == "chunk"] == ["one", "two", "three"]
    assert all(f["messageId"] == message_id for f in replies)
    assert replies[-1]["status"] == "completed" and replies[-1]["response"] == "onetwothree"
    assert replies[-1]["timestamp"] > 0 and "duration" in replies[-1]
    events = [f for f in frames if f["type"] == "event"]
    assert {"process.spawned", "turn.started", "turn.chunk"} <= {e["kind"] for e in events}
    assert all(e["team"] == "alpha" for e in events)


async def test_cancel_over_the_socket_interrupts_a_running_message(gateway: Gateway) -> None:
    async with connect(ws_url(gateway), additional_headers={"X-API-Key": gateway.iris.admin_key}) as socket:
        await socket.send(json.dumps({"type": "message", "team": "alpha", "message": "slow 100 100"}))
        started = await frames_until(socket, "chunk")
        message_id = started[0]["messageId"]
        await socket.send(json.dumps({"type": "cancel", "messageId": message_id}))
        frames = await frames_until(socket, "complete", 30)
    cancelled = [f for f in frames if f["type"] == "cancelled"]
    assert cancelled and cancelled[0]["messageId"] == message_id
    assert frames[-1]["status"] == "cancelled" and frames[-1]["messageId"] == message_id


async def test_bad_frames_get_an_error_frame_and_the_connection_stays_usable(gateway: Gateway) -> None:
    async with connect(ws_url(gateway), additional_headers={"X-API-Key": gateway.iris.admin_key}) as socket:
        bad_frames: list[str | bytes] = [
            "not json",
            "[1, 2]",
            json.dumps({"type": "dance"}),
            json.dumps({"type": "message"}),
            json.dumps({"type": "message", "team": "alpha", "message": "hi", "fromTeam": 7}),
            b"\x00binary",
        ]
        for bad in bad_frames:
            await socket.send(bad)
            error = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert (
                error["type"] == "error"
                and error["statusCode"] == 400
                and error["code"] == "INVALID_ARGUMENT"
            )
        await socket.send(json.dumps({"type": "message", "team": "nobody", "message": "hi"}))
        unknown = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert (unknown["type"], unknown["statusCode"], unknown["error"]) == (
            "error",
            404,
            "TeamNotFoundError",
        )
        await socket.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10)) == {"type": "pong"}


async def test_a_browser_authenticates_with_a_first_auth_frame(gateway: Gateway) -> None:
    async with connect(ws_url(gateway)) as socket:
        await socket.send(json.dumps({"type": "auth", "key": gateway.iris.admin_key}))
        await socket.send(json.dumps({"type": "message", "team": "beta", "message": "say hi"}))
        frames = await frames_until(socket, "complete")
    assert frames[-1]["response"] == "hi"


@pytest.mark.parametrize("first", [json.dumps({"type": "auth", "key": "iris_sk_live_wrong"}), "no key"])
async def test_without_a_valid_key_nothing_is_served(gateway: Gateway, first: str) -> None:
    async with connect(ws_url(gateway)) as socket:
        await socket.send(first)
        await socket.send(json.dumps({"type": "message", "team": "beta", "message": "say hi"}))
        reply = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert reply["type"] == "error" and reply["statusCode"] == 401
        if first == "no key":
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(socket.recv(), 10)
