"""The gRPC face of Iris: the servicer implementing iris.v1.Iris on iris_core, its interceptors and server.

It depends on the domain (``iris_core``) and the contract kit (``iris_client``) only; the composition root
(``iris_app``) builds a server with ``iris_grpc.server.build_grpc_server``.
"""
