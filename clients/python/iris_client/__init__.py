"""The Iris contract kit: the generated messages and stubs of ``iris.v1``, and what every client needs.

- ``iris_client.generated.iris.v1.iris_pb2``: the messages (imports protobuf only, never grpc, so the server's
  domain can use them as its result types); ``iris_pb2_grpc``: the gRPC stubs.
- ``iris_client.contract``: the service descriptor and the options each RPC declares (permission, MCP tool,
  HTTP rule) and the contract's comments.
- ``iris_client.json_mapping``: messages as the JSON every non-gRPC transport speaks, and its JSON Schema.
- ``iris_client.call_errors``: a failed call read back into the standard error body.
- ``iris_client.channels`` and ``iris_client.credentials``: channels to Iris and the credential metadata.

This module imports nothing, so importing the messages never loads grpc.
"""
