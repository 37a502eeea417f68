"""REST routes read from the contract: one per ``google.api.http`` binding of every RPC.

The contract already says, for each RPC, its HTTP verb, its path template, which fields the body carries and
(by elimination) which come from the query string. Writing a route per RPC by hand would state all of that a
second time and let the two drift, so the gateway derives its routes here, at start-up, from the service
descriptors. A new RPC with an annotation is served, and documented, with no gateway change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.api import http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from iris_client.contract import grpc_path, http_rule

__all__ = ["Route", "compile_template", "routes_of"]

_VERBS = ("get", "put", "post", "delete", "patch")
_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC, with everything needed to serve and document it."""

    method: MethodDescriptor
    """The RPC."""
    verb: str
    """The HTTP method in upper case (``POST``)."""
    template: str
    """The contract's path template, as written (``/api/v1/teams/{to_team}/stream``)."""
    path: str
    """The Starlette path, variables named by their JSON names (``/api/v1/teams/{toTeam}/stream``)."""
    path_fields: tuple[FieldDescriptor, ...]
    """Request fields bound to path variables, in template order."""
    body: str
    """The rule's ``body``: ``"*"`` (every field not in the path), a field name, or ``""`` (no body)."""
    query_fields: tuple[FieldDescriptor, ...]
    """Request fields read from the query string: those bound to neither the path nor the body."""
    response_body: str = ""
    """The rule's ``response_body``: the one reply field sent as the HTTP body; ``""`` for the whole reply."""

    @property
    def grpc_path(self) -> str:
        """The method's gRPC path (``/iris.v1.Iris/Tell``), for calling it generically on a channel."""
        return grpc_path(self.method)

    @property
    def server_streaming(self) -> bool:
        """True for a server-streaming RPC, served as SSE or NDJSON."""
        return bool(self.method.server_streaming)

    @property
    def request_class(self) -> type[Message]:
        """The generated (or dynamically built) class of the request message."""
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def response_class(self) -> type[Message]:
        """The class of the response message."""
        return message_factory.GetMessageClass(self.method.output_type)

    @property
    def response_field(self) -> FieldDescriptor | None:
        """The one reply field the HTTP body is when the rule names one (``response_body: "field"``)."""
        return self.method.output_type.fields_by_name[self.response_body] if self.response_body else None

    @property
    def body_field(self) -> FieldDescriptor | None:
        """The one field the body carries when the rule names one (``body: "field"``)."""
        if self.body in ("", "*"):
            return None
        return self.method.input_type.fields_by_name[self.body]


def compile_template(template: str) -> tuple[str, tuple[str, ...]]:
    """Turn a ``google.api.http`` path template into a Starlette path and its variables' field names.

    ``{field}`` and ``{field=*}`` match one segment, ``{field=**}`` the rest of the path. Patterns inside a
    variable (``{name=shelves/*}``) and nested fields (``{a.b}``) are refused: Iris uses neither, and
    serving them half-right would be worse than failing at start-up.

    Raises:
        ValueError: the template uses a form this gateway does not serve.

    """
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, pattern = match.group(1), match.group(2)
        if "." in name or not name.isidentifier():
            raise ValueError(f"{template}: nested or malformed field path {name!r} is not supported")
        if pattern not in (None, "*", "**"):
            raise ValueError(f"{template}: variable pattern {pattern!r} is not supported")
        names.append(name)
        return "{" + name + (":path" if pattern == "**" else "") + "}"

    path = _VARIABLE.sub(replace, template)
    if not path.startswith("/"):
        raise ValueError(f"{template}: a path template starts with /")
    return path, tuple(names)


def _bindings(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    yield from rule.additional_bindings


def _verb_and_template(rule: http_pb2.HttpRule) -> tuple[str, str] | None:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        return None
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    assert kind in _VERBS
    return kind.upper(), str(getattr(rule, kind))


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule) -> Route | None:
    found = _verb_and_template(rule)
    if found is None:
        return None
    verb, template = found
    fields = method.input_type.fields_by_name
    path, names = compile_template(template)
    for name in names:
        if name not in fields:
            raise ValueError(f"{method.full_name}: path variable {{{name}}} is not a request field")
    path_fields = tuple(fields[name] for name in names)
    for field in path_fields:
        path = path.replace("{" + field.name, "{" + field.json_name, 1)
    body = rule.body
    if body not in ("", "*") and body not in fields:
        raise ValueError(f"{method.full_name}: body {body!r} is not a request field")
    if verb == "GET" and body:
        raise ValueError(f"{method.full_name}: a GET binding cannot have a body")
    bound = set(names) | ({body} if body not in ("", "*") else set())
    query = () if body == "*" else tuple(f for f in method.input_type.fields if f.name not in bound)
    reply_field = rule.response_body
    if reply_field and reply_field not in method.output_type.fields_by_name:
        raise ValueError(f"{method.full_name}: response_body {reply_field!r} is not a reply field")
    return Route(method, verb, template, path, path_fields, body, query, reply_field)


def routes_of(services: Iterable[ServiceDescriptor]) -> list[Route]:
    """Return every HTTP binding of every method of ``services``, literal paths before templated ones.

    Starlette tries routes in order, so ``GET /api/teams/status`` must come before any ``GET
    /api/teams/{team}`` that would otherwise capture it; sorting by the number of variables does that for
    any contract.

    Raises:
        ValueError: a binding names a field the request does not have, or uses an unsupported template.

    """
    routes: list[Route] = []
    for service in services:
        for method in service.methods:
            declared = http_rule(method)
            if declared is None:
                continue
            for rule in _bindings(declared):
                route = _route(method, rule)
                if route is not None:
                    routes.append(route)
    return sorted(routes, key=lambda r: len(r.path_fields))
