"""Ask a team a question, then stream its answer to another, with iris-client's IrisClient.

IRIS_API_KEY=... python ask_and_stream.py [team]        (IRIS_ADDRESS defaults to 127.0.0.1:50051)
"""

import os
import sys

from iris_client import IrisClient, IrisError

team = sys.argv[1] if len(sys.argv) > 1 else "backend"
with IrisClient(os.environ.get("IRIS_ADDRESS", "127.0.0.1:50051")) as iris:
    try:
        answer = iris.teams[team].ask("What database do we use?")
        print(f"answer: {answer.response} ({answer.message_id}, {answer.duration} ms)")
        for chunk in iris.teams[team].stream("Explain auth"):
            print(chunk.text, end="", flush=True)
        print()
    except IrisError as error:
        sys.exit(f"{error.reason}: {error.message}")
