"""The gRPC face of Iris: the servicer implementing iris.v1.Iris on iris_core, its interceptors and server."""

from .app import running_iris
from .server import build_grpc_server

__all__ = ["build_grpc_server", "running_iris"]
