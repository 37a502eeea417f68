"""Reading the contract itself: the service, each RPC's options, and the comments of every element.

Everything that is derived from ``iris.proto`` (REST routes, OpenAPI, MCP tools, the permission table, the
server's authorization) reads the contract through these functions, so an option is parsed in one place.

Generated Python descriptors carry no comments, so ``make gen`` also writes ``iris.binpb``, the contract's
descriptor set with source info. Schemas derived from the contract (the MCP tools' parameters) describe
their fields with these comments instead of restating them by hand.
"""

from __future__ import annotations

import functools
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from .generated.iris.v1 import iris_pb2

__all__ = ["IRIS_SERVICE", "comment_of", "grpc_path", "http_rule", "mcp_tool", "required_permission"]

IRIS_SERVICE: ServiceDescriptor = iris_pb2.DESCRIPTOR.services_by_name["Iris"]
"""The ``iris.v1.Iris`` service."""


def grpc_path(method: MethodDescriptor) -> str:
    """Return the method's gRPC path (``/iris.v1.Iris/Tell``), to call it generically on a channel."""
    return f"/{method.containing_service.full_name}/{method.name}"


def required_permission(method: MethodDescriptor) -> str:
    """Return the permission the RPC declares (``option (iris.v1.required_permission)``), or ``""``."""
    return str(method.GetOptions().Extensions[iris_pb2.required_permission])


def mcp_tool(method: MethodDescriptor) -> iris_pb2.McpTool | None:
    """Return the RPC's ``(iris.v1.mcp_tool)`` option, or None when it is not offered over MCP."""
    option = method.GetOptions().Extensions[iris_pb2.mcp_tool]
    return option if option.name else None


def http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    """Return the RPC's ``google.api.http`` rule, or None when it has no REST binding."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    return options.Extensions[annotations_pb2.http]


_DESCRIPTOR_SET = Path(__file__).parent / "generated" / "iris" / "v1" / "iris.binpb"

# Field numbers in descriptor.proto, which source-info paths are made of.
_FILE_MESSAGES, _FILE_SERVICES = 4, 6
_MESSAGE_FIELDS, _MESSAGE_NESTED = 2, 3
_SERVICE_METHODS = 2


Path_ = tuple[int, ...]


def _message_names(
    messages: list[descriptor_pb2.DescriptorProto], path: Path_, prefix: str, names: dict[Path_, str]
) -> None:
    """Record the source-info path of each message and field (nested ones too) with its full name."""
    for i, message in enumerate(messages):
        here = (*path, i)
        name = f"{prefix}.{message.name}"
        names[here] = name
        for j, field in enumerate(message.field):
            names[(*here, _MESSAGE_FIELDS, j)] = f"{name}.{field.name}"
        _message_names(list(message.nested_type), (*here, _MESSAGE_NESTED), name, names)


@functools.cache
def _comments() -> dict[str, str]:
    """Return full name (``iris.v1.TellRequest.to_team``) -> its leading comment, one paragraph."""
    files = descriptor_pb2.FileDescriptorSet.FromString(_DESCRIPTOR_SET.read_bytes())
    found: dict[str, str] = {}
    for file in files.file:
        names: dict[Path_, str] = {}
        _message_names(list(file.message_type), (_FILE_MESSAGES,), file.package, names)
        for i, service in enumerate(file.service):
            for j, method in enumerate(service.method):
                path = (_FILE_SERVICES, i, _SERVICE_METHODS, j)
                names[path] = f"{file.package}.{service.name}.{method.name}"
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is not None and location.leading_comments.strip():
                found[name] = " ".join(location.leading_comments.split())
    return found


def comment_of(full_name: str) -> str:
    """Return the comment of a contract element by full name, or ``""`` if it has none."""
    return _comments().get(full_name, "")
