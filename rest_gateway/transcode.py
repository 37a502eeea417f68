"""HTTP request -> request message, and message -> JSON, by the contract's proto3 JSON mapping.

Requests are built with ``json_format`` from three sources, as ``google.api.http`` says: the path
variables, the body (every other field for ``body: "*"``, or the one field it names) and the query string
(the fields bound to neither). Names are the JSON (camelCase) names; the proto names are accepted too.

What a request may not carry is refused with a 400 ``ValidationError`` naming it (``details.field``), the
way the MCP adapter refuses an unknown parameter, so a typo (``timout``) is an error, not a silent default:

- **Unknown fields.** A body field the request message does not have, at any depth (Struct values such
  as PermissionsApprove's ``input`` excepted: they are free-form), and a query parameter the route does not
  read (one bound to the path or body, or on a route whose body takes every field). Only the original
  iris-mcp's compatibility parameters, which Iris has no field for, are accepted and ignored:
  ``COMPATIBILITY_QUERY`` (``?includeProcessDetails``, ``?includeMessages``) and ``COMPATIBILITY_BODY``
  (``"stream": true``), so its documented curl examples keep working.
- **Hostile JSON**, checked before or while it is parsed, so it can cost neither a deep recursion nor a
  huge integer conversion: nesting deeper than ``MAX_JSON_DEPTH`` (32) arrays and objects, the body itself
  counting as one (field ``body``); a number literal longer than ``MAX_NUMBER_CHARS`` (40) characters, in
  the body (naming its top-level field) or in a numeric query or path value (naming it); ``NaN`` and
  ``Infinity``, which are not JSON; a body that is not UTF-8 JSON, or not an object (field ``body``).
- A known field with a value of the wrong type (naming it).

Responses are written by :func:`iris_client.json_mapping.message_to_json`, the JSON every transport shares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from itertools import accumulate
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from iris_client.json_mapping import message_to_json

from .errors import GatewayError
from .routes import Route

__all__ = [
    "COMPATIBILITY_BODY",
    "COMPATIBILITY_QUERY",
    "MAX_JSON_DEPTH",
    "MAX_NUMBER_CHARS",
    "build_request",
    "message_to_json",
    "parse_body",
]

MAX_JSON_DEPTH = 32
"""Arrays and objects nested in a body, the body's own object included. Deep enough for any request (a
PermissionsApprove ``input`` is the deepest), shallow enough that every accepted body is also a message gRPC
decodes (its parser stops at 100 nested messages, and a Struct spends three of them per JSON object)."""

MAX_NUMBER_CHARS = 40
"""Characters of one number literal: an int64 has at most 20 and a double's shortest form 24."""

COMPATIBILITY_QUERY = frozenset({"includeProcessDetails", "includeMessages"})
"""Query parameters of the original iris-mcp's curl examples that Iris has no field for: accepted, ignored."""

COMPATIBILITY_BODY = frozenset({"stream"})
"""Body fields of the original iris-mcp's curl examples that Iris has no field for: accepted, ignored."""

_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})

_NUMERIC = frozenset(
    {
        FieldDescriptor.TYPE_DOUBLE,
        FieldDescriptor.TYPE_FLOAT,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
    }
)

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
"""A JSON string (unrolled, so it matches in linear time); its brackets are text, not structure."""
_NOT_A_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def _too_deep(raw: bytes) -> bool:
    """Tell whether UTF-8 JSON ``raw`` nests deeper than ``MAX_JSON_DEPTH``, without parsing it.

    UTF-8 never puts a quote, backslash or bracket byte inside a multibyte character, so the bytes can be
    scanned as they are: strings are removed, the brackets left are counted, in C, stopping at the first
    level past the bound. A body with fewer brackets than the bound cannot be too deep and is not scanned.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_A_BRACKET)
    return next(filter(MAX_JSON_DEPTH.__lt__, accumulate(map(_STEP.__getitem__, brackets))), None) is not None


class _TooLong:
    """Stands, in a parsed body, for a number literal longer than ``MAX_NUMBER_CHARS``."""


_TOO_LONG = _TooLong()


def _int(text: str) -> int | _TooLong:
    return _TOO_LONG if len(text) > MAX_NUMBER_CHARS else int(text)


def _float(text: str) -> float | _TooLong:
    return _TOO_LONG if len(text) > MAX_NUMBER_CHARS else float(text)


def _not_json(text: str) -> object:
    raise ValueError(f"{text} is not a JSON value")


def _holds_too_long(value: object) -> bool:
    """Tell whether a parsed value holds a too-long number (recursion bounded by ``MAX_JSON_DEPTH``)."""
    if value is _TOO_LONG:
        return True
    if isinstance(value, dict):
        return any(_holds_too_long(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_too_long(v) for v in value)
    return False


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode a JSON object body; an empty body is ``{}`` (``curl -X POST .../wake`` sends none).

    Raises:
        GatewayError: the body is not UTF-8 JSON, or not an object, or nests deeper than
            ``MAX_JSON_DEPTH`` (field ``body``); it holds a number longer than ``MAX_NUMBER_CHARS``
            (naming the top-level field that holds it).

    """
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GatewayError.invalid("Malformed JSON body: it is not UTF-8", field="body") from exc
    if _too_deep(raw):
        raise GatewayError.invalid(
            f"The JSON body nests deeper than {MAX_JSON_DEPTH} arrays and objects", field="body"
        )
    try:
        data = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise GatewayError.invalid(
            f"Malformed JSON body at line {exc.lineno} column {exc.colno}", field="body"
        ) from exc
    except ValueError as exc:  # NaN, Infinity
        raise GatewayError.invalid(f"Malformed JSON body: {exc}", field="body") from exc
    if not isinstance(data, dict):
        raise GatewayError.invalid("The JSON body must be an object", field="body")
    for key, value in data.items():
        if _holds_too_long(value):
            raise GatewayError.invalid(
                f"Invalid value for field '{key}': a number longer than {MAX_NUMBER_CHARS} characters",
                field=key,
            )
    return data


def _field_named(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    for field in descriptor.fields:
        if name in (field.json_name, field.name):
            return field
    return None


def _merge(message: Message, field: FieldDescriptor, value: object, shown_as: str) -> None:
    """Parse one field on its own, so that a bad value is reported against the field that holds it.

    A non-empty string for a string field (team names, messages: most of what a request carries) is set as
    it is, which is what parsing it would do, without building a message for it; anything else, and a
    string protobuf refuses, goes through ``json_format``, whose error names the field.
    """
    if (
        field.type == FieldDescriptor.TYPE_STRING
        and not field.is_repeated
        and isinstance(value, str)
        and value
    ):
        try:
            setattr(message, field.name, value)
        except (TypeError, ValueError):
            pass  # parsed below, for the error naming the field
        else:
            return
    part = type(message)()
    try:
        json_format.ParseDict({field.json_name: value}, part)
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
    if field.type in _NUMERIC and len(text) > MAX_NUMBER_CHARS:
        raise GatewayError.invalid(
            f"Invalid value for field '{shown_as}': a number longer than {MAX_NUMBER_CHARS} characters",
            field=shown_as,
        )
    return text


def _unknown(route: Route, key: str, where: str, takes: Iterable[FieldDescriptor]) -> GatewayError:
    names = ", ".join(f.json_name for f in takes) or "none"
    return GatewayError.invalid(f"{route.method.name} has no {where} '{key}' (it takes: {names})", field=key)


def build_request(
    route: Route,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: Mapping[str, Any],
) -> Message:
    """Build the route's request message from its path variables, query parameters and JSON body.

    Path variables win over a body field of the same name, because the URL is what the caller addressed.

    Raises:
        GatewayError: an unknown field or query parameter (the compatibility ones aside), or a known one
            with a value of the wrong type or a number too long (each naming it).

    """
    message = route.request_class()
    descriptor = route.method.input_type
    if route.body == "*":
        for key, value in body.items():
            field = _field_named(descriptor, key)
            if field is not None:
                _merge(message, field, value, key)
            elif key not in COMPATIBILITY_BODY:
                bound = set(route.path_fields)
                raise _unknown(route, key, "field", (f for f in descriptor.fields if f not in bound))
    elif route.body_field is not None:
        _merge(message, route.body_field, dict(body), route.body_field.json_name)
    allowed = {name: f for f in route.query_fields for name in (f.json_name, f.name)}
    repeated: dict[FieldDescriptor, list[object]] = {}
    for key, text in query:
        field = allowed.get(key)
        if field is None:
            if key in COMPATIBILITY_QUERY:
                continue
            raise _unknown(route, key, "query parameter", route.query_fields)
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
