"""Client channels to an Iris gRPC server, for the gateway and the MCP adapter."""

from __future__ import annotations

from pathlib import Path

import grpc

__all__ = ["CHANNEL_OPTIONS", "iris_channel"]

CHANNEL_OPTIONS = (
    # grpc backs off up to 120 s between reconnects; a long-lived client (a Claude session's stdio adapter,
    # the gateway) would keep failing for that long after Iris restarts.
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)
"""Options of every client channel to Iris."""


def iris_channel(target: str, tls_cert: Path | None = None) -> grpc.aio.Channel:
    """Open a channel to Iris at ``target``: plaintext, or TLS trusting the server's own certificate.

    Call it inside the running event loop (a grpc.aio channel made before the loop fails). Dead peers are
    found by the server's keepalive pings and, on loopback, by the kernel closing the connection.
    """
    if tls_cert is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_cert.read_bytes())
    return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
