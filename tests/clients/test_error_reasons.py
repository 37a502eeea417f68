"""Every client knows every reason Iris names a failure by: the server's error tree is the one list."""

from __future__ import annotations

import re

import pytest

import iris_client.errors as client_errors
import iris_core.errors as server_errors
from tests.clients.conftest import CLIENTS


def _reasons_of(root: type[server_errors.IrisError]) -> set[str]:
    return {root.reason} | {reason for sub in root.__subclasses__() for reason in _reasons_of(sub)}


# What the servicer answers for a bug (iris_grpc/status.py), beside the error tree's own reasons.
SERVER_REASONS = (_reasons_of(server_errors.IrisError) - {"IrisError"}) | {"InternalError"}


def test_the_python_client_has_a_class_for_every_reason_iris_sends() -> None:
    classes = {
        cls.known_reason
        for cls in vars(client_errors).values()
        if isinstance(cls, type) and issubclass(cls, client_errors.IrisError)
    }
    assert SERVER_REASONS <= classes


@pytest.mark.parametrize("source", ["go/iris/errors.go", "ts/src/errors.ts"])
def test_the_go_and_typescript_clients_name_every_reason_iris_sends(source: str) -> None:
    named = set(re.findall(r'"(\w+Error)"', (CLIENTS / source).read_text()))
    assert SERVER_REASONS <= named, SERVER_REASONS - named
