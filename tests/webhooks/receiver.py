"""Test doubles for webhook delivery: a movable clock and a real HTTP receiver.

The receiver listens on 127.0.0.1 (an ephemeral port) in a thread, verifies every request's
``Prorata-Signature`` with the secret registered for its path, at the shared clock's time,
and records what it saw. It answers ``status`` (200 unless a test says otherwise) to
authentic requests and 400 to the others.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prorata.core import signing


class Clock:
    """A clock tests move by hand; callable like the dispatcher's ``now``."""

    def __init__(self, start: datetime) -> None:
        self.value = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.value

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.value += timedelta(seconds=seconds)

    def unix(self) -> int:
        return int(self().timestamp())


@dataclass(frozen=True)
class Received:
    path: str
    event_id: str
    header_event_id: str | None
    signature: str | None
    verified: bool
    reason: str | None
    status: int
    body: dict
    raw: bytes
    user_agent: str | None
    content_type: str | None


class Receiver:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.secrets: dict[str, str] = {}
        self.status = 200
        self.received: list[Received] = []
        self.port = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        """Listen (again) on the same port as before, or on a new ephemeral one."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._handle(self, body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections to the port are refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        secret = self.secrets.get(handler.path)
        header = handler.headers.get("Prorata-Signature")
        reason = None
        try:
            if secret is None:
                raise signing.SignatureError(f"no secret registered for {handler.path}")
            signing.verify(header or "", body, secret, now=self.clock.unix())
        except signing.SignatureError as exc:
            reason = str(exc)
        status = self.status if reason is None else 400
        document = json.loads(body)
        with self._lock:
            self.received.append(
                Received(
                    path=handler.path,
                    event_id=document["id"],
                    header_event_id=handler.headers.get("Prorata-Event-Id"),
                    signature=header,
                    verified=reason is None,
                    reason=reason,
                    status=status,
                    body=document,
                    raw=body,
                    user_agent=handler.headers.get("User-Agent"),
                    content_type=handler.headers.get("Content-Type"),
                )
            )
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok" if status < 300 else b"no")

    def accepted(self, path: str) -> Counter[str]:
        """How many times each event id was answered 2xx on ``path``."""
        with self._lock:
            return Counter(
                r.event_id for r in self.received if r.path == path and 200 <= r.status < 300
            )

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.received)
