"""The curl examples of the original iris-mcp's HTTP API document work as written, with a key."""

from __future__ import annotations

import asyncio

from tests.gateway.conftest import Gateway


async def test_the_original_designs_curl_examples_work_as_written(gateway: Gateway) -> None:
    c = gateway.client
    async with asyncio.timeout(60):
        tell = await c.post(  # (one process: beta -> alpha)
            "/api/teams/tell",
            json={
                "toTeam": "alpha",
                "message": "say All APIs operational",
                "fromTeam": "beta",
                "timeout": 30000,
            },
        )
        wake = await c.post("/api/teams/alpha/wake")
        status = await c.get("/api/teams/alpha/status")
        sleep = await c.post("/api/teams/alpha/sleep", json={"force": False})
        wake_all = await c.post("/api/teams/wake-all")  # (three more: admin -> each team)
        teams = await c.get("/api/teams?includeProcessDetails=true")
        system = await c.get("/api/status")
        health = await c.get("/api/health")
        session_id = tell.json()["sessionId"]
        cache = await c.get(f"/api/cache/{session_id}/read?includeMessages=true")
        cleared = await c.delete(f"/api/cache/{session_id}")
        after = await c.get(f"/api/cache/{session_id}")
        unknown = await c.get("/api/cache/no-such-session")
    assert tell.status_code == 200 and tell.json()["response"] == "All APIs operational"
    assert wake.status_code == 200 and wake.json()["status"] == "awake" and wake.json()["sessionId"]
    assert status.status_code == 200 and status.json()["team"] == "alpha" and status.json()["awake"] is True
    assert sleep.status_code == 200 and sleep.json()["status"] == "asleep"
    assert wake_all.status_code == 200 and wake_all.json()["successCount"] == 3
    assert teams.status_code == 200 and teams.json()["totalTeams"] == 3
    body = system.json()
    assert system.status_code == 200 and body["processes"]["maxProcesses"] == 10
    assert body["processes"]["total"] == 4 and body["sessions"]["total"] >= 2 and body["uptime"] > 0
    assert health.status_code == 200 and health.json()["status"] == "ok"
    entries = cache.json()["report"]["entries"]
    assert cache.status_code == 200 and entries[0]["request"] == "say All APIs operational"
    assert cleared.status_code == 200 and cleared.json()["removedEntries"] == 1
    assert after.json()["report"]["entries"] == []
    assert unknown.status_code == 404 and unknown.json()["error"] == "SessionNotFoundError"
