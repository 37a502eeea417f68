from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import Iris, start_iris


@pytest.fixture
async def iris(tmp_path: Path) -> AsyncIterator[Iris]:
    async with start_iris(tmp_path) as running:
        yield running
