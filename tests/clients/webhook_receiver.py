"""A webhook receiver on 127.0.0.1 for the job tests: it records each delivery and answers 204."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    """One POST the receiver got."""

    headers: dict[str, str]
    raw: bytes
    body: dict[str, object]


@dataclass
class Receiver:
    """Where deliveries land; ``url`` is what a job's callback names."""

    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def first(self, within_s: float = 60) -> Delivery:
        assert self.arrived.wait(within_s), "no webhook delivery arrived"
        return self.deliveries[0]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.deliveries.append(Delivery(headers, raw, json.loads(raw or b"{}")))
            receiver.arrived.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
