"""Fixtures of the SSH tests: one real sshd per test module, and an Iris whose team ``far`` runs over it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.ssh.sshd import Sshd, running_sshd


@pytest.fixture
async def sshd(tmp_path: Path) -> AsyncIterator[Sshd]:
    async with running_sshd(tmp_path / "sshd") as server:
        yield server
