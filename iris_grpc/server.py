"""The gRPC server: grpc.aio with the Iris servicer, reflection, health, keepalive and size limits."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from iris_client.contract import IRIS_SERVICE
from iris_client.generated.iris.v1 import iris_pb2
from iris_core.service import IrisService

from .decoding import add_decoding_servicer
from .interceptors import AuditInterceptor, OncePerMethod, build_interceptors
from .method_permissions import method_permissions
from .servicer import build_servicer
from .tracing import TracingInterceptor

__all__ = ["SERVICE_NAME", "GrpcServer", "build_grpc_server"]

logger = logging.getLogger(__name__)

SERVICE_NAME = iris_pb2.DESCRIPTOR.services_by_name["Iris"].full_name

_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_OPTIONS = [
    # Messages are capped at 100 KB of text, but reports carry whole sessions: allow 16 MiB each way.
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    # Keep long streams (a slow team turn) alive through idle proxies, and drop dead peers.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # Let an over-long credential header reach the authentication interceptor, which refuses and audits it,
    # instead of being dropped by the transport with no trace.
    ("grpc.max_metadata_size", 64 * 1024),
]


@dataclass(slots=True)
class GrpcServer:
    """A started server and the port it bound (port 0 picks a free one)."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    audit: AuditInterceptor

    async def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new calls, let running ones finish for ``grace_s``, then cancel them; flush the audit."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        await self.audit.drain()


async def build_grpc_server(service: IrisService, *, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """Create, bind and start the gRPC server for ``service`` (TLS when ``api.tls`` is configured).

    Raises:
        RuntimeError: the address could not be bound, or an RPC of the contract declares no permission.
        LookupError: an RPC of the contract has no implementation in the domain.

    """
    api = service.config.api
    interceptors = build_interceptors(method_permissions(), api, service.keys, service.audit, service.metrics)
    # Tracing → Audit → Metrics → AccessLog → Authentication → Authorization → RateLimit → servicer: tracing
    # is outermost, so its span (continuing the caller's traceparent) covers refusals too and is current in
    # every interceptor (the access line reads its trace id) and in the domain.
    traced = [TracingInterceptor(SERVICE_NAME), *interceptors]
    # The chain is walked once per method, not once per call (OncePerMethod).
    server = grpc.aio.server(options=_OPTIONS, interceptors=[OncePerMethod(traced)])
    # Not add_IrisServicer_to_server: a payload that is not the request message must be a ValidationError.
    add_decoding_servicer(build_servicer(service.handler), IRIS_SERVICE, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    if api.tls is not None:
        credentials = grpc.ssl_server_credentials(
            [(api.tls.key_file.read_bytes(), api.tls.cert_file.read_bytes())]
        )
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"could not bind {host}:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    logger.info("gRPC listening on %s:%d", host, bound)
    audit = interceptors[0]
    assert isinstance(audit, AuditInterceptor)
    return GrpcServer(server, bound, health_servicer, audit)
