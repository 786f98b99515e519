"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a real registry (stdlib only).

`FaultProxy(upstream_url, delay=0.0)` forwards every request to the upstream registry, after `delay` seconds (the
benchmarks use it as a distant registry). `.fault(pattern, kind, times=None, **options)` makes requests whose path
matches `pattern` (re.search; first matching rule wins) misbehave:

- `status`: answer `code` (401, 403, 404, 429, 500...) with a distribution-style error body (429 adds
  `Retry-After: retry_after`, default 1);
- `hang`: say nothing until the client gives up or the proxy stops (at most `hang_limit` seconds);
- `truncate`: send the headers with the full Content-Length, then half the body, then close;
- `flip`: forward the answer with one byte changed (`offset`, default 0, XOR 0x01).

`times=N` applies a rule to its first N matching requests only (then it passes through). `.seen` lists
(method, path) of every request. Threaded, with a bounded number of requests served at once.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}
_ERROR_CODES = {
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "MANIFEST_UNKNOWN",
    429: "TOOMANYREQUESTS",
    500: "UNKNOWN",
    502: "UNKNOWN",
    503: "UNAVAILABLE",
}


@dataclass
class Fault:
    pattern: re.Pattern[str]
    kind: str
    times: int | None
    options: dict[str, Any]
    hits: int = 0


class FaultProxy:
    def __init__(self, upstream: str, delay: float = 0.0, hang_limit: float = 60.0, max_active: int = 64) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        assert parsed.scheme == "http" and parsed.hostname, upstream
        self.upstream = (parsed.hostname, parsed.port or 80)
        self.delay = delay
        self.hang_limit = hang_limit
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_active)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        assert self._server is not None, "start the proxy first"
        return f"127.0.0.1:{self._server.server_address[1]}"

    def fault(self, pattern: str, kind: str, times: int | None = None, **options: Any) -> FaultProxy:
        assert kind in ("status", "hang", "truncate", "flip"), kind
        with self._lock:
            self.faults.append(Fault(re.compile(pattern), kind, times, options))
        return self

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.seen.clear()

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.seen.append((method, path))
            for fault in self.faults:
                if fault.pattern.search(path) and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 120

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                with proxy._slots:
                    proxy._serve(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default 5 drops bursts of connections (a 1 s SYN retry each)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- one request -----------------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if self.delay:
            time.sleep(self.delay)
        fault = self._pick(h.command, h.path)
        if fault is not None and fault.kind == "status":
            code = int(fault.options["code"])
            payload = (
                f'{{"errors":[{{"code":"{_ERROR_CODES.get(code, "UNKNOWN")}","message":"injected {code}"}}]}}'
            ).encode()
            h.send_response(code)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            if code == 429:
                h.send_header("Retry-After", str(fault.options.get("retry_after", 1)))
            if code == 401:
                h.send_header("WWW-Authenticate", 'Basic realm="faultproxy"')
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(payload)
            return
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(self.hang_limit)
            h.close_connection = True
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"{self.upstream[0]}:{self.upstream[1]}")
            for key, value in h.headers.items():  # repeated headers (Accept) stay repeated
                if key.lower() not in _HOP and key.lower() not in ("host", "content-length"):
                    conn.putheader(key, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            status, reply_headers = resp.status, resp.getheaders()
        finally:
            conn.close()
        if fault is not None and fault.kind == "flip" and data:
            offset = int(fault.options.get("offset", 0)) % len(data)
            data = data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]
        h.send_response(status)
        for key, value in reply_headers:
            if key.lower() not in _HOP and key.lower() != "content-length":
                h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        if fault is not None and fault.kind == "truncate":
            h.send_header("Connection", "close")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data[: len(data) // 2])
                h.wfile.flush()
            h.close_connection = True
            return
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
