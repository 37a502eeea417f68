"""Docs that are generated from the contract stay in step with it."""

from __future__ import annotations

from pathlib import Path

from iris_grpc.method_permissions import README_BEGIN, README_END, permissions_table

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_permissions_table_is_the_one_the_contract_gives() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip()
    assert table == permissions_table()
    assert "| SendMessage | `team:tell` | `POST /api/teams/tell` |" in table
