"""A tool call's arguments -> the RPC's request message, by the contract's JSON mapping.

Arguments use the request's JSON names (``toTeam``; the proto names are accepted too). The adapter only
translates: what a value means, and whether it is allowed, Iris decides behind gRPC. What cannot be
translated at all (a parameter the tool does not have, a value of the wrong JSON type) is refused here with
the ValidationError body Iris itself would send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from iris_client.call_errors import CallFailure

from .tools import IrisTool

__all__ = ["ToolInputError", "request_from_arguments"]


class ToolInputError(Exception):
    """Arguments that cannot become the tool's request message."""

    def __init__(self, message: str, *, parameter: str) -> None:
        super().__init__(message)
        self.failure = CallFailure(
            "ValidationError", message, grpc.StatusCode.INVALID_ARGUMENT, {"field": parameter}
        )


def _field_named(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    for field in descriptor.fields:
        if name in (field.json_name, field.name):
            return field
    return None


def request_from_arguments(
    tool: IrisTool, arguments: Mapping[str, Any] | None, default_from_team: str
) -> Message:
    """Build ``tool``'s request from its arguments; an absent ``fromTeam`` becomes ``default_from_team``.

    A repeated field takes one value or a list (the original iris-mcp's ``level: "error"`` or
    ``["error", "warn"]``), and
    ``null`` means "not given".

    Raises:
        ToolInputError: an unknown parameter, or a value of the wrong type (the message names it).

    """
    message = tool.request_class()
    descriptor = tool.method.input_type
    for key, value in (arguments or {}).items():
        field = _field_named(descriptor, key)
        if field is None:
            known = ", ".join(f.json_name for f in descriptor.fields) or "no parameters"
            raise ToolInputError(f"{tool.name} has no parameter '{key}' (it takes {known})", parameter=key)
        if value is None:
            continue
        if field.is_repeated and not isinstance(value, list):
            value = [value]
        part = tool.request_class()
        try:
            json_format.ParseDict({field.json_name: value}, part)
        except json_format.ParseError as exc:
            raise ToolInputError(f"Invalid value for parameter '{key}': {exc}", parameter=key) from exc
        message.MergeFrom(part)
    from_team = descriptor.fields_by_name.get("from_team")
    if default_from_team and from_team is not None and not getattr(message, from_team.name):
        setattr(message, from_team.name, default_from_team)
    return message
