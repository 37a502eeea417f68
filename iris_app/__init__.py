"""The composition root: ``iris serve`` and the rest of the ``iris`` command.

The only package that imports every other one: it starts the domain (``iris_core``), serves it over gRPC
(``iris_grpc``), puts the REST gateway (``rest_gateway``) and MCP (``mcp_adapter``) in front as gRPC clients,
and optionally the offline model (``iris_offline_model``). Start a server with ``iris_app.app.running_iris``.
"""
