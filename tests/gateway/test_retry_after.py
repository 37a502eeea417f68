"""A turn that waited its admission bound out is a 503 over REST with a Retry-After header."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import send, start_iris, wait_until_running, write_config


async def test_no_slot_within_the_admission_bound_is_a_503_with_retry_after(tmp_path: Path) -> None:
    settings = {"maxProcesses": 1, "admissionTimeout": 1500}
    async with start_iris(tmp_path, write_config(tmp_path, settings=settings), http=True) as iris:
        await send(iris, "slow 100 100", frm="busy", timeout_ms=-1)
        await wait_until_running(iris, "alpha", "busy")
        base = f"http://127.0.0.1:{iris.running.http_port}"
        headers = {"authorization": f"Bearer {iris.admin_key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
            response = await http.post(
                "/api/teams/tell", json={"toTeam": "beta", "message": "say b", "timeout": 0}
            )
    assert response.status_code == 503
    body = response.json()
    assert (body["error"], body["code"]) == ("ProcessPoolLimitError", "UNAVAILABLE")
    assert response.headers["retry-after"] == str(max(1, -(-int(body["details"]["retryAfterMs"]) // 1000)))
