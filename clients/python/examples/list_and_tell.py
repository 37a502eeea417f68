"""List the teams of a running Iris and stream one team's answer, with nothing but iris-client installed.

IRIS_API_KEY=... python list_and_tell.py 127.0.0.1:50051 alpha "say hello"
"""

import os
import sys

import grpc

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc

target, team, message = sys.argv[1:4]
key = (("authorization", f"Bearer {os.environ['IRIS_API_KEY']}"),)
with grpc.insecure_channel(target) as channel:
    iris = iris_pb2_grpc.IrisStub(channel)
    print(
        "teams:",
        ", ".join(t.name for t in iris.ListTeams(pb.ListTeamsRequest(), metadata=key, timeout=30).teams),
    )
    for event in iris.Tell(pb.TellRequest(to_team=team, message=message), metadata=key, timeout=60):
        print(event.WhichOneof("event"), event.chunk.text or event.complete.status)
