"""The README's quick start, as a program: ask, stream, then fire off a job and wait for it.

IRIS_API_KEY=... IRIS_CALLBACK_URL=https://… python quickstart.py   (IRIS_ADDRESS: 127.0.0.1:50051)
"""

import os

from iris_client import IrisClient

url = os.environ.get("IRIS_CALLBACK_URL", "https://example.com/iris-hook")

iris = IrisClient(os.environ.get("IRIS_ADDRESS", "127.0.0.1:50051"))  # the key: api_key=..., or IRIS_API_KEY
r = iris.teams.backend.ask("What database do we use?")  # r.response, r.message_id, r.metadata
print(r.response)
for chunk in iris.teams.backend.stream("Explain auth"):
    print(chunk.text, end="")
print()
job = iris.teams["data-pipeline"].execute("Generate the report", callback=url)
record = job.wait(timeout=600)
print(f"{job.job_id}: {record.status}: {record.response}")
iris.close()
