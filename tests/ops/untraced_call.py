"""One REST call to an in-process Iris with no OpenTelemetry SDK configured; prints what it saw as JSON.

Run as a module in a fresh interpreter (the test process has a provider installed, and a global provider
cannot be uninstalled): ``python -m tests.ops.untraced_call ROOT TRACEPARENT``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
from opentelemetry import trace

from tests.harness import live_processes_in, start_iris


def claude_traceparents(root: Path, team: str = "alpha") -> list[str]:
    """The TRACEPARENT each live Claude Code process of ``team`` (under ``root``) was started with."""
    seen: list[str] = []
    for pid in live_processes_in(root / "teams" / team):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        seen += [entry.split(b"=", 1)[1].decode() for entry in environ if entry.startswith(b"TRACEPARENT=")]
    return seen


async def main(root: Path, traceparent: str) -> dict[str, object]:
    async with start_iris(root, http=True) as iris:
        url = f"http://127.0.0.1:{iris.running.http_port}"
        headers = {"authorization": f"Bearer {iris.admin_key}", "traceparent": traceparent}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            reply = await client.post(
                "/api/teams/tell", json={"fromTeam": "caller", "toTeam": "alpha", "message": "untraced"}
            )
        seen = claude_traceparents(root)
        return {
            "status": reply.status_code,
            "answer": reply.json().get("response", ""),
            "provider": type(trace.get_tracer_provider()).__name__,
            "claude_traceparents": seen,
            "claude_processes": len(live_processes_in(root / "teams" / "alpha")),
        }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))))  # noqa: T201 - the test reads it
