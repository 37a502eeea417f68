"""HTTP request -> request message, and message -> JSON, by the contract's proto3 JSON mapping.

Requests are built with ``json_format`` from three sources, as ``google.api.http`` says: the path
variables, the body (every other field for ``body: "*"``, or the one field it names) and the query string
(the fields bound to neither). Names are the JSON (camelCase) names; the proto names are accepted too.
Unknown fields and query parameters are ignored, so the original iris-mcp's curl examples
(``?includeProcessDetails``,
``"stream": true``) keep working; a known field with a value of the wrong type is a 400 naming it.

Responses are written by :func:`iris_client.json_mapping.message_to_json`, the JSON every transport shares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from iris_client.json_mapping import message_to_json

from .errors import GatewayError
from .routes import Route

__all__ = ["build_request", "message_to_json", "parse_body"]


_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode a JSON object body; an empty body is ``{}`` (``curl -X POST .../wake`` sends none).

    Raises:
        GatewayError: the body is not UTF-8 JSON, or not an object.

    """
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise GatewayError.invalid(f"Malformed JSON body{where}", field="body") from exc
    if not isinstance(data, dict):
        raise GatewayError.invalid("The JSON body must be an object", field="body")
    return data


def _field_named(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    for field in descriptor.fields:
        if name in (field.json_name, field.name):
            return field
    return None


def _merge(message: Message, field: FieldDescriptor, value: object, shown_as: str) -> None:
    """Parse one field on its own, so that a bad value is reported against the field that holds it."""
    part = type(message)()
    try:
        json_format.ParseDict({field.json_name: value}, part, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise GatewayError.invalid(f"Invalid value for field '{shown_as}': {exc}", field=shown_as) from exc
    message.MergeFrom(part)


def _from_text(field: FieldDescriptor, text: str, shown_as: str) -> object:
    """Turn a path or query string into the JSON value ``json_format`` expects for ``field``."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise GatewayError.invalid(
            f"Invalid value for field '{shown_as}': expected true or false", field=shown_as
        )
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        raise GatewayError.invalid(f"Field '{shown_as}' cannot be given in the URL", field=shown_as)
    return text


def build_request(
    route: Route,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: Mapping[str, Any],
) -> Message:
    """Build the route's request message from its path variables, query parameters and JSON body.

    Path variables win over a body field of the same name, because the URL is what the caller addressed.

    Raises:
        GatewayError: a known field has a value of the wrong type.

    """
    message = route.request_class()
    descriptor = route.method.input_type
    if route.body == "*":
        for key, value in body.items():
            field = _field_named(descriptor, key)
            if field is not None:
                _merge(message, field, value, key)
    elif route.body_field is not None:
        _merge(message, route.body_field, dict(body), route.body_field.json_name)
    allowed = {name: f for f in route.query_fields for name in (f.json_name, f.name)}
    repeated: dict[FieldDescriptor, list[object]] = {}
    for key, text in query:
        field = allowed.get(key)
        if field is None:
            continue
        value = _from_text(field, text, key)
        if field.is_repeated:
            repeated.setdefault(field, []).append(value)
        else:
            _merge(message, field, value, key)
    for field, values in repeated.items():
        _merge(message, field, values, field.json_name)
    for field in route.path_fields:
        message.ClearField(field.name)
        _merge(
            message, field, _from_text(field, path_params[field.json_name], field.json_name), field.json_name
        )
    return message
