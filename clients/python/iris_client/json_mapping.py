"""The contract's messages as the JSON every non-gRPC transport speaks, and as JSON Schema.

REST replies, SSE/NDJSON events and MCP tool results are all the same JSON: proto3 JSON with camelCase names
and every field present (a reply always has ``status``, counts and ``0``s), except that 64-bit integers are
JSON numbers rather than strings. They are millisecond times, durations and counts, far below 2**53, and
the original iris-mcp's callers read them as numbers (``new Date(reply.timestamp)``).

The schema tables here are the one description of how a field's type looks in JSON; the OpenAPI document
and the MCP tool schemas are both built from them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["SCALAR_SCHEMAS", "WELL_KNOWN_SCHEMAS", "Schema", "message_to_json"]

Schema = dict[str, Any]

SCALAR_SCHEMAS: dict[int, Schema] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_FIXED64: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT64: {"type": "integer", "format": "int64"},
}
"""Scalar field type -> JSON Schema (64-bit integers are numbers, as ``message_to_json`` writes them)."""

WELL_KNOWN_SCHEMAS: dict[str, Schema] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Any": {"type": "object", "additionalProperties": True},
}
"""Well-known message -> the JSON Schema of its special proto3 JSON form."""

_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


def _numbers(data: Any, descriptor: Descriptor) -> Any:
    """Turn the int64 strings of proto3 JSON into numbers, and list the fields in the contract's order.

    The printer puts fields left at their defaults last, so a reply's key order would otherwise change with
    its values (an hour of 0 moved ``hour`` to the end).
    """
    if not isinstance(data, dict) or descriptor.full_name.startswith("google.protobuf."):
        return data
    ordered: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.json_name not in data:
            continue
        value = data[field.json_name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type.fields_by_name["value"]
            ordered[field.json_name] = {k: _one(entry, v) for k, v in value.items()}
        elif field.is_repeated:
            ordered[field.json_name] = [_one(field, v) for v in value]
        else:
            ordered[field.json_name] = _one(field, value)
    return ordered


def _one(field: FieldDescriptor, value: Any) -> Any:
    if field.type in _INT64_TYPES and isinstance(value, str):
        return int(value)
    if field.message_type is not None:
        return _numbers(value, field.message_type)
    return value


def message_to_json(message: Message) -> dict[str, Any]:
    """Return ``message`` as the transports' JSON: camelCase, every field present, 64-bit ints as numbers."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=False, always_print_fields_with_no_presence=True
    )
    descriptor = message.DESCRIPTOR
    assert isinstance(descriptor, Descriptor)
    result: dict[str, Any] = _numbers(data, descriptor)
    return result
