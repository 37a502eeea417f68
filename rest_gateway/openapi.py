"""OpenAPI 3 for the generated routes, derived from the same descriptors that made them.

Every schema comes from a message descriptor, with the JSON (camelCase) names the gateway actually sends
and accepts, so the document cannot drift from the routes or the contract. Messages become components;
a body that leaves out path-bound fields gets its own ``<Method>Body`` component.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from iris_client.json_mapping import SCALAR_SCHEMAS, WELL_KNOWN_SCHEMAS, Schema

from .errors import HTTP_STATUS_OF
from .routes import Route
from .streams import NDJSON_MEDIA_TYPE, SSE_MEDIA_TYPE

__all__ = ["openapi_document"]

ERROR_SCHEMA: Schema = {
    "type": "object",
    "description": "Every failure: the Iris error's name, a message for people, and the gRPC code.",
    "required": ["error", "message", "statusCode", "timestamp", "code", "details"],
    "properties": {
        "error": {"type": "string", "description": "Iris error class, e.g. ValidationError"},
        "message": {"type": "string"},
        "statusCode": {"type": "integer"},
        "timestamp": {"type": "integer", "format": "int64", "description": "Unix time in milliseconds"},
        "code": {"type": "string", "enum": sorted(code.name for code in HTTP_STATUS_OF)},
        "details": {"type": "object", "additionalProperties": True},
    },
}


class _Components:
    """Collects one schema per message reached from the routes."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {"Error": ERROR_SCHEMA}

    def ref(self, descriptor: Descriptor) -> Schema:
        if descriptor.full_name in WELL_KNOWN_SCHEMAS:
            return dict(WELL_KNOWN_SCHEMAS[descriptor.full_name])
        name = descriptor.name
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: a message may contain itself
            self.schemas[name] = self.object(descriptor.fields)
        return {"$ref": f"#/components/schemas/{name}"}

    def object(self, fields: Iterable[FieldDescriptor]) -> Schema:
        return {"type": "object", "properties": {f.json_name: self.field(f) for f in fields}}

    def field(self, field: FieldDescriptor) -> Schema:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.single(message.fields_by_name["value"])}
        if field.is_repeated:
            return {"type": "array", "items": self.single(field)}
        return self.single(field)

    def single(self, field: FieldDescriptor) -> Schema:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        return dict(SCALAR_SCHEMAS[field.type])


def _parameters(route: Route, components: _Components) -> list[Schema]:
    params = [
        {"name": f.json_name, "in": "path", "required": True, "schema": components.single(f)}
        for f in route.path_fields
    ]
    for field in route.query_fields:
        if field.message_type is not None:
            continue  # a message cannot be spelled in a query string
        schema = components.field(field)
        params.append({"name": field.json_name, "in": "query", "required": False, "schema": schema})
    return params


def _request_body(route: Route, components: _Components) -> Schema | None:
    if not route.body:
        return None
    if route.body_field is not None:
        schema = components.single(route.body_field)
    elif route.path_fields:
        bound = set(route.path_fields)
        name = f"{route.method.name}Body"
        fields = [f for f in route.method.input_type.fields if f not in bound]
        components.schemas[name] = {**components.object(fields), "additionalProperties": False}
        schema = {"$ref": f"#/components/schemas/{name}"}
    else:
        schema = components.ref(route.method.input_type)
        if "$ref" in schema:  # a request message is a body, whose unknown fields are refused (transcode.py)
            components.schemas[route.method.input_type.name]["additionalProperties"] = False
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _responses(route: Route, components: _Components) -> Schema:
    sent = route.response_field
    shown = (
        sent.message_type if sent is not None and sent.message_type is not None else route.method.output_type
    )
    reply = components.ref(shown)
    if route.server_streaming:
        content = {
            SSE_MEDIA_TYPE: {"schema": {"type": "string", "description": "event: <oneof field>, data: JSON"}},
            NDJSON_MEDIA_TYPE: {"schema": {"type": "object", "properties": {"result": reply}}},
        }
        description = "A stream of events: SSE with Accept: text/event-stream, NDJSON otherwise"
    else:
        content = {"application/json": {"schema": reply}}
        description = "The reply"
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "200": {"description": description, "content": content},
        "default": {"description": "An error", **error},
    }


def openapi_document(routes: Iterable[Route], *, title: str, version: str) -> Schema:
    """Return the OpenAPI 3.1 document of ``routes``: paths, schemas and the two ways to send a key."""
    components = _Components()
    paths: dict[str, dict[str, Schema]] = {}
    seen: dict[str, int] = {}
    for route in routes:
        name = route.method.name
        seen[name] = seen.get(name, 0) + 1
        operation: Schema = {
            # An RPC with additional bindings has several operations; each needs its own id.
            "operationId": name if seen[name] == 1 else f"{name}{seen[name]}",
            "summary": route.method.name,
            "tags": [route.method.containing_service.name],
            "parameters": _parameters(route, components),
            "responses": _responses(route, components),
            "x-grpc-method": route.grpc_path.lstrip("/"),
        }
        body = _request_body(route, components)
        if body is not None:
            operation["requestBody"] = body
        paths.setdefault(route.path.replace(":path}", "}"), {})[route.verb.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An Iris API key"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
