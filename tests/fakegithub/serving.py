"""Two ways to put a ``FakeGitHub`` on the wire: ``responses`` callbacks (in-process) or a real HTTP server."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ProtocolError

from .spec import OpenAPIViolation

if TYPE_CHECKING:
    from .core import FakeGitHub


# ---------------------------------------------------------------------------------------------- responses
def _url_pattern(base_url: str) -> re.Pattern[str]:
    parts = urlsplit(base_url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    port_re = f"(:{default})?" if parts.port in (None, default) else f":{parts.port}"
    return re.compile(f"^{re.escape(parts.scheme)}://{re.escape(parts.hostname or '')}{port_re}"
                      f"{re.escape(parts.path.rstrip('/'))}/.*")


def install(fake: FakeGitHub, rsps: Any) -> None:
    """Register ``fake`` on ``rsps`` (a ``responses.RequestsMock``) for every method under ``fake.base_url``.

    Transport faults become ``requests`` exceptions: ``RESET``/``RESET_AFTER`` raise ``ConnectionError`` (with a
    ``ConnectionResetError`` inside, as requests does), ``TIMEOUT`` raises ``ReadTimeout``.
    """
    from .core import ConnectionDropped, ConnectionHung

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        body = request.body
        if body is not None and not isinstance(body, str | bytes):
            raise TypeError("FakeGitHub: streamed request bodies are not supported")
        headers = {k: v if isinstance(v, str) else v.decode("latin-1") for k, v in request.headers.items()}
        try:
            return fake.handle(str(request.method), str(request.url), headers, body)
        except ConnectionDropped:
            raise requests.exceptions.ConnectionError(ProtocolError(
                "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
                request=request) from None
        except ConnectionHung:
            raise requests.exceptions.ReadTimeout("Read timed out. (fake github: TIMEOUT fault)",
                                                  request=request) from None

    pattern = _url_pattern(fake.base_url)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        rsps.add_callback(method, pattern, callback=callback)
    if not pattern.match(fake.graphql_url + "/"):  # GHES: https://HOST/api/graphql beside https://HOST/api/v3
        rsps.add_callback("POST", re.compile("^" + re.escape(fake.graphql_url) + "/?$"), callback=callback)


# ---------------------------------------------------------------------------------------------- real HTTP
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeGitHub) -> None:
        super().__init__(address, _Handler)
        self.fake = fake
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that reset or dropped its connection (its time-out, its process ending) is not a crash of
        the fake: only other exceptions are printed (socketserver prints every one to stderr)."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms per request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        from .core import ConnectionDropped, ConnectionHung

        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        origin = urlsplit(fake.base_url)
        url = f"{origin.scheme}://{origin.netloc}{self.path}"  # base_url may carry a path (GHES: /api/v3)
        try:
            status, headers, payload = fake.handle(self.command, url, dict(self.headers.items()), body)
        except ConnectionDropped:
            self._reset()
            return
        except ConnectionHung:
            self.server.stopping.wait(fake.hang_seconds)
            self._reset()
            return
        except OpenAPIViolation as exc:  # already in fake.violations: the fixture fails the test
            status, headers, payload = 500, {"Content-Type": "application/json"}, json.dumps(
                {"message": f"fake github: {exc}"}).encode()
        except Exception:  # a bug in the fake: make it visible
            fake.errors.append(traceback.format_exc())
            status, headers, payload = 500, {"Content-Type": "application/json"}, json.dumps(
                {"message": "fake github crashed; see fake.errors"}).encode()
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        with contextlib.suppress(OSError):  # the client gave up (its time-out): nothing to answer
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

    def _reset(self) -> None:
        """Abort the TCP connection with an RST (SO_LINGER 0), as a crashing proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()


@contextlib.contextmanager
def serve(fake: FakeGitHub, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``fake`` on ``http://host:<ephemeral port>`` in a daemon thread; ``fake.base_url`` points there
    while the block runs (and is restored afterwards)."""
    server = _Server((host, port), fake)
    url = f"http://{host}:{server.server_address[1]}"
    previous = fake.base_url
    fake.base_url = url
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="fake-github", daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        fake.base_url = previous
