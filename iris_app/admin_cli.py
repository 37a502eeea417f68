"""``iris key …`` and ``iris audit …``: manage keys and read the audit log on this machine's Iris home.

They open keys.db / audit.db directly (no server needed); a running server sees a new or revoked key on its
next call, since it looks keys up by hash every time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from iris_core.access import PERMISSIONS
from iris_core.audit import AuditLog
from iris_core.clock import now_ms
from iris_core.key_admin import KeyAdmin
from iris_core.keys import KeyStore, parse_duration_ms

__all__ = ["add_admin_commands", "run_admin_command"]


def add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``key`` and ``audit`` commands to the ``iris`` parser."""
    key = commands.add_parser("key", help="create, list and revoke API keys")
    key_commands = key.add_subparsers(dest="key_command", required=True)
    generate = key_commands.add_parser("generate", help="create a key (shown once)")
    generate.add_argument("--name", required=True)
    generate.add_argument("--permissions", required=True, help=f"comma-separated: {', '.join(PERMISSIONS)}")
    generate.add_argument("--expires", default="", help="lifetime such as 30d, 12h, 90m (default: never)")
    generate.add_argument("--env", default="live", help="the key's environment tag (live, test)")
    generate.add_argument("--rate-limit", type=int, default=0, help="requests per window (default: config)")
    generate.add_argument(
        "--daily-budget-usd",
        type=float,
        default=0.0,
        help="USD the key's turns may cost per UTC day (0: none)",
    )
    generate.add_argument("--monthly-budget-usd", type=float, default=0.0, help="USD per UTC month (0: none)")
    key_commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by name or id")
    revoke.add_argument("key", metavar="NAME|ID")
    audit = commands.add_parser("audit", help="read the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    tail = audit_commands.add_parser("tail", help="the newest audit rows")
    tail.add_argument("--since", default="", help="only rows newer than this long ago: 30m, 2h, 1d")
    tail.add_argument("--limit", type=int, default=50)
    for parser in (generate, key_commands.choices["list"], revoke, tail):
        parser.add_argument("--home", type=Path, help="Iris home (default $IRIS_HOME or ~/.iris)")


async def run_admin_command(args: argparse.Namespace, home: Path) -> int:
    """Run a ``key`` or ``audit`` command; return the exit status."""
    if args.command == "audit":
        since = now_ms() - parse_duration_ms(args.since, field="--since") if args.since else 0
        async with AuditLog(home / "audit.db") as audit:
            for row in await audit.tail(since_ms=since, limit=args.limit):
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.time_ms / 1000))
                print(
                    f"{stamp} {row.event:12} {row.outcome:18} key={row.key_name or '-'} "
                    f"method={row.method or '-'} team={row.team or '-'} peer={row.peer or '-'} {row.detail}"
                )
        return 0
    async with KeyStore(home / "keys.db") as keys, AuditLog(home / "audit.db") as audit:
        admin = KeyAdmin(keys, audit)
        if args.key_command == "generate":
            key, info = await admin.create(
                name=args.name,
                permissions=[args.permissions],
                expires_in=args.expires,
                environment=args.env,
                rate_limit=args.rate_limit,
                daily_budget_usd=args.daily_budget_usd,
                monthly_budget_usd=args.monthly_budget_usd,
                by="iris key generate",
            )
            print(key)
            print(
                f"Created key {info.name} ({info.id}) with {', '.join(info.permissions)}. "
                "It is shown only now; store it safely.",
                file=sys.stderr,
            )
        elif args.key_command == "list":
            for record in await keys.list():
                expires = (
                    time.strftime("%Y-%m-%d", time.localtime(record.expires_at / 1000))
                    if record.expires_at
                    else "never"
                )
                state = "revoked" if record.revoked else "active"
                print(
                    f"{record.id}  {record.name:20} {state:8} {record.prefix}…  expires {expires}  "
                    f"{','.join(record.permissions)}"
                )
        else:
            revoked = await admin.revoke(args.key, by="iris key revoke")
            print(f"Revoked key {revoked.name} ({revoked.id}).", file=sys.stderr)
    return 0
