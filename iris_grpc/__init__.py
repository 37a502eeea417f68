"""The gRPC face of Iris: the servicer implementing iris.v1.Iris on iris_core, its interceptors and server.

The package itself imports nothing, so a light client of the contract (the MCP adapter over stdio, which
Claude Code starts per session) can use ``iris_grpc.generated`` and the JSON helpers without loading the
server, the pool and Claude's SDK. Start a server with ``iris_grpc.app.running_iris``.
"""
