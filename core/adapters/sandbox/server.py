"""Serve sandbox routing functions over real HTTP on loopback (`python -m core sandbox`)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Handler = Callable[[httpx.Request], httpx.Response]
log = logging.getLogger(__name__)
#: The largest request body a sandbox reads (a partner refuses larger ones): 1 MiB.
MAX_BODY = 1 << 20


def make_server(
    routes: dict[str, Handler], host: str = "127.0.0.1", port: int = 0, *, hang_s: float = 10.0
) -> ThreadingHTTPServer:
    """`routes` maps a path prefix ("/terms") to a sandbox handler that sees the rest of the path.
    A sandbox's simulated timeout holds the connection for `hang_s` (longer than the caller
    waits), then drops it without an answer, as a partner that timed out would."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the sandbox listens on loopback only")

    class _Bridge(BaseHTTPRequestHandler):
        # connections kept alive, as a partner's are (every answer says its length): a caller's
        # pooled connection serves call after call instead of a new connection, and a new
        # server thread, per call; answers go out at once (headers and body, no Nagle wait)
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = 30  # a kept-alive connection idle this long is closed, and its thread ends

        def _handle(self) -> None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self.close_connection = True  # its body is not read here: not kept for the next request
                self._answer(httpx.Response(411, json={"error": "length_required"}))
                return
            declared = (self.headers.get("Content-Length") or "0").strip()
            digits = declared.isascii() and declared.isdigit()  # no sign, no "²" (headers are latin-1)
            if not digits or int(declared) > MAX_BODY:
                self.close_connection = True  # what follows is not a request we can find
                self._answer(httpx.Response(413 if digits else 400, json={"error": "bad_length"}))
                return
            length = int(declared)
            body = self.rfile.read(length) if length else b""
            for prefix, handler in routes.items():
                if self.path == prefix or self.path.startswith(prefix + "/"):
                    rest = self.path[len(prefix) :] or "/"
                    request = httpx.Request(
                        self.command, f"http://sandbox{rest}", headers=dict(self.headers), content=body
                    )
                    try:
                        response = handler(request)
                    except httpx.TimeoutException:
                        time.sleep(hang_s)
                        self.close_connection = True
                        return
                    except Exception as error:  # a sandbox's own fault: one line, no traceback
                        log.error("sandbox %s %s failed: %s", self.command, prefix, type(error).__name__)
                        response = httpx.Response(500, json={"error": "sandbox_failed"})
                    break
            else:
                response = httpx.Response(404, json={"error": "no such sandbox"})
            try:
                self._answer(response)
            except (BrokenPipeError, ConnectionResetError):  # the caller went away (or was killed)
                self.close_connection = True

        def _answer(self, response: httpx.Response) -> None:
            self.send_response(response.status_code)
            if self.close_connection:  # the caller is told not to send another on this connection
                self.send_header("Connection", "close")
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            content = response.content
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: object) -> None:  # quiet; no query strings in logs
            return

    return _SandboxServer((host, port), _Bridge)


class _SandboxServer(ThreadingHTTPServer):
    """A threading server whose kept-alive connections end with it: `server_close` shuts every
    open one, so a stopped sandbox stops answering on its callers' pooled connections too. Its
    queue of connections not yet accepted is a partner's, not socketserver's five: a worker
    opening its connections at once (32 calls in flight) overflowed five, and the kernel reset
    the connections it could not queue (a debit's answer then lost, asked for again later)."""

    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            still_open, self._open = list(self._open), set()
        for connection in still_open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True)
    thread.start()
    return thread
