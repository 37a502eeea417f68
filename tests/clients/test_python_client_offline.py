"""The Python client without an Iris: the timeouts it sends, the errors it reads and raises, bad keys."""

from __future__ import annotations

import copy
import pickle

import grpc
import pytest

from iris_client.call_options import CallOptions
from iris_client.errors import IrisError, TeamNotFoundError, error_from


class _Failed:
    """A failed call as grpc shows it, with the trailers given."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, object], ...]) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> object:
        return self._trailers


def _options() -> CallOptions:
    return CallOptions.of("iris_sk_test_x", None, 30.0)


@pytest.mark.parametrize("timeout_s", [0.0004, 1e-9])
def test_a_tiny_positive_ask_timeout_is_not_sent_as_0_which_means_no_limit(timeout_s: float) -> None:
    request, _ = _options().ask(
        "backend", "q", timeout_s=timeout_s, from_team=None, source=None, metadata=None
    )
    assert request.timeout >= 1


def test_a_tiny_positive_stream_timeout_is_not_sent_as_0_which_means_no_limit() -> None:
    request = _options().tell("backend", "m", timeout_s=0.0004, from_team=None, persist=False)
    assert request.timeout >= 1


@pytest.mark.parametrize("timeout_s", [float("nan"), float("inf")])
def test_a_non_finite_ask_timeout_is_refused_as_a_value_error_naming_timeout(timeout_s: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        _options().ask("backend", "q", timeout_s=timeout_s, from_team=None, source=None, metadata=None)


def test_malformed_status_details_still_give_an_iris_error() -> None:
    call = _Failed(grpc.StatusCode.NOT_FOUND, "gone", (("grpc-status-details-bin", b"\xff\xfe\x01garbage"),))
    error = error_from(call)  # raised google.protobuf.message.DecodeError
    assert isinstance(error, IrisError)
    assert error.code is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))])
def test_errors_survive_copy_and_pickle(clone: object) -> None:
    error = TeamNotFoundError(
        "Unknown team: nope",
        code=grpc.StatusCode.NOT_FOUND,
        reason="TeamNotFoundError",
        details={"team": "nope"},
    )
    copied = clone(error)  # type: ignore[operator]
    assert isinstance(copied, TeamNotFoundError)
    assert (copied.code, copied.reason, copied.details) == (error.code, error.reason, error.details)


@pytest.mark.parametrize(
    "key", ["iris_sk_live_SECRET\n# comment", "iris_sk_live_SECRET\r\nx", "iris_sk_\x00SECRET"]
)
def test_a_key_that_cannot_be_sent_is_refused_at_once_without_echoing_it(key: str) -> None:
    with pytest.raises(ValueError) as caught:
        CallOptions.of(key, None, 30.0)
    assert "SECRET" not in str(caught.value)


def test_a_key_read_from_a_file_with_its_newline_is_sent_without_it() -> None:
    assert CallOptions.of("iris_sk_live_k\n", None, 30.0).metadata == (
        ("authorization", "Bearer iris_sk_live_k"),
    )


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_a_call_timeout_must_be_positive_and_finite(seconds: float) -> None:
    with pytest.raises(ValueError, match="call_timeout"):
        CallOptions.of("k", None, seconds)
