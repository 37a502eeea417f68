"""The gRPC face of Iris: the servicer implementing iris.v1.Iris on iris_core, and its server."""
