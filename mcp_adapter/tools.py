"""The tool catalog, read from the contract: every RPC with an ``(iris.v1.mcp_tool)`` option is a tool.

A tool's input schema is its request message's, described by the contract's own comments, with the
fields the contract marks ``REQUIRED`` required. Nothing about any one tool is written here, so a new
annotated RPC is a new tool with no adapter change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.api import field_behavior_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from iris_client.contract import IRIS_SERVICE, comment_of, mcp_tool
from iris_client.json_mapping import SCALAR_SCHEMAS, WELL_KNOWN_SCHEMAS, Schema

__all__ = ["IrisTool", "input_schema", "iris_tools"]


@dataclass(frozen=True)
class IrisTool:
    """One MCP tool: an RPC of the contract, shown under the original iris-mcp's name."""

    name: str
    """The tool's name (``send_message``)."""
    description: str
    """What it does, for the model."""
    method: MethodDescriptor
    """The RPC it stands for: its request is the tool's input and its reply the tool's result."""
    streamed_by: MethodDescriptor | None
    """The server-streaming RPC called instead, to report progress while the answer is produced."""
    input_schema: Schema
    """JSON Schema of the arguments (the request message's JSON form)."""

    @property
    def request_class(self) -> type[Message]:
        """The class of the RPC's request message."""
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def reply_class(self) -> type[Message]:
        """The class of the RPC's reply message."""
        return message_factory.GetMessageClass(self.method.output_type)


def _required(field: FieldDescriptor) -> bool:
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviors


def _single(field: FieldDescriptor) -> Schema:
    message = field.message_type
    if message is not None:
        if message.full_name in WELL_KNOWN_SCHEMAS:
            return dict(WELL_KNOWN_SCHEMAS[message.full_name])
        return _object(message)
    if field.enum_type is not None:
        return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
    schema = dict(SCALAR_SCHEMAS[field.type])
    schema.pop("format", None)  # OpenAPI's int32/int64 words; not JSON Schema, and no help to a model
    return schema


def _field(field: FieldDescriptor) -> Schema:
    one = _single(field)
    if field.is_repeated:
        # One value or a list: the original iris-mcp's get_logs takes level as "error" or ["error", "warn"].
        schema: Schema = {"anyOf": [one, {"type": "array", "items": one}]}
    else:
        schema = one
    description = comment_of(field.full_name)
    if description:
        schema["description"] = description
    return schema


def _object(message: Descriptor) -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": {field.json_name: _field(field) for field in message.fields},
        "additionalProperties": False,
    }
    required = [field.json_name for field in message.fields if _required(field)]
    if required:
        schema["required"] = required
    return schema


def input_schema(message: Descriptor) -> Schema:
    """Return the JSON Schema of a request message's JSON form (camelCase names, the contract's comments)."""
    return _object(message)


def _check_streamed_by(method: MethodDescriptor, streamed: MethodDescriptor) -> None:
    if not streamed.server_streaming:
        raise ValueError(f"{method.full_name}: streamed_by {streamed.name} is not a server-streaming RPC")
    theirs = streamed.input_type.fields_by_name
    for field in method.input_type.fields:
        other = theirs.get(field.name)
        if other is None or other.type != field.type or other.is_repeated != field.is_repeated:
            twin = streamed.input_type.full_name
            raise ValueError(f"{method.full_name}: field {field.name} has no counterpart in {twin}")


def iris_tools(services: Iterable[ServiceDescriptor] = (IRIS_SERVICE,)) -> tuple[IrisTool, ...]:
    """Return the tools of ``services``, in the contract's order.

    Raises:
        ValueError: two RPCs claim one tool name, or a ``streamed_by`` names no fitting streaming RPC
            (checked now, so a contract the adapter cannot serve fails at start-up).

    """
    tools: list[IrisTool] = []
    for service in services:
        for method in service.methods:
            option = mcp_tool(method)
            if option is None:
                continue
            streamed = None
            if option.streamed_by:
                streamed = service.methods_by_name.get(option.streamed_by)
                if streamed is None:
                    raise ValueError(f"{method.full_name}: streamed_by names no RPC {option.streamed_by!r}")
                _check_streamed_by(method, streamed)
            tools.append(
                IrisTool(
                    name=option.name,
                    description=option.description,
                    method=method,
                    streamed_by=streamed,
                    input_schema=input_schema(method.input_type),
                )
            )
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        raise ValueError(f"Two RPCs share an MCP tool name: {sorted(n for n in names if names.count(n) > 1)}")
    return tuple(tools)
