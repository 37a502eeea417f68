"""A new annotated RPC is served and documented with no gateway change: the gateway reads descriptors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import ServiceDescriptor

from rest_gateway import GatewayConfig, create_app
from tests.gateway.conftest import serving

_FILE = "tests/gateway/echo_test_only.proto"


def echo_service() -> ServiceDescriptor:
    """Build, in code, the test-only contract ``test.v1.Echo`` with ``GET /test/echo/{text}``."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName("test.v1.Echo")
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(
        name=_FILE, package="test.v1", syntax="proto3", dependency=["google/api/annotations.proto"]
    )
    message = proto.message_type.add(name="EchoMessage")
    for number, (name, kind) in enumerate([("text", "TYPE_STRING"), ("times", "TYPE_INT64")], start=1):
        message.field.add(
            name=name,
            number=number,
            json_name=name,
            type=descriptor_pb2.FieldDescriptorProto.Type.Value(kind),
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    method = proto.service.add(name="Echo").method.add(
        name="Echo", input_type=".test.v1.EchoMessage", output_type=".test.v1.EchoMessage"
    )
    method.options.Extensions[annotations_pb2.http].get = "/test/echo/{text}"
    pool.AddSerializedFile(proto.SerializeToString())
    return pool.FindServiceByName("test.v1.Echo")


@asynccontextmanager
async def echo_server(service: ServiceDescriptor) -> AsyncIterator[str]:
    cls: Any = message_factory.GetMessageClass(service.methods_by_name["Echo"].input_type)

    async def echo(request: Any, context: Any) -> Any:
        return cls(text=request.text * max(1, request.times), times=request.times)

    handler = grpc.method_handlers_generic_handler(
        "test.v1.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(
                echo, request_deserializer=cls.FromString, response_serializer=cls.SerializeToString
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


async def test_an_rpc_added_to_a_contract_is_served_and_documented() -> None:
    service = echo_service()
    async with echo_server(service) as target:
        app = create_app(target, GatewayConfig(services=[service]))
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as client, asyncio.timeout(10):
            reply = await client.get("/test/echo/ab", params={"times": "3"})
            doc = (await client.get("/openapi.json")).json()
    assert reply.status_code == 200
    assert reply.json() == {"text": "ababab", "times": 3}
    operation = doc["paths"]["/test/echo/{text}"]["get"]
    assert operation["operationId"] == "Echo"
    assert [p["name"] for p in operation["parameters"]] == ["text", "times"]
