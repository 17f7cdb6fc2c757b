"""A local HTTP server for the offline demo site (and for tests that need odd responses).

Threaded stdlib ``http.server``; feeds and sitemaps hold a ``{base}`` placeholder that is
filled with the server's own base URL, since the port is only known at run time.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

from newsmon.crawlers.registry import Source, load_sources

DEMO_ROOT = Path(__file__).resolve().parent / "demo_site"
DEMO_SOURCES = DEMO_ROOT / "sources.yaml"
CONTENT_TYPES = {
    ".html": "text/html",
    ".xml": "application/xml",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".gz": "application/gzip",
    ".pdf": "application/pdf",
}
# A route writes a whole response itself; tests use them for broken, slow or huge responses.
Route = Callable[[BaseHTTPRequestHandler], None]


def demo_sources(base_url: str) -> list[Source]:
    """The demo outlets' registry with ``{base}`` filled in."""
    return load_sources(DEMO_SOURCES, {"base": base_url.rstrip("/")})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: requests are recorded in ``DemoServer.hits`` instead of stderr."""

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.record(path)
        if self.server.delay:
            time.sleep(self.server.delay)
        if route := self.server.routes.get(path):
            route(self)
            return
        file = (self.server.root / path.lstrip("/")).resolve()
        if file.is_dir():
            file = file / "index.html"
        if not file.is_relative_to(self.server.root) or not file.is_file():
            self.send_plain(404, b"not found")
            return
        body = file.read_bytes()
        if file.suffix == ".xml":
            body = body.replace(b"{base}", self.server.base_url.encode())
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        mtime = int(file.stat().st_mtime)
        if self._not_modified(etag, mtime):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _not_modified(self, etag: str, mtime: int) -> bool:
        if match := self.headers.get("If-None-Match"):
            return etag in [tag.strip() for tag in match.split(",")] or match.strip() == "*"
        if since := self.headers.get("If-Modified-Since"):
            try:
                return int(parsedate_to_datetime(since).timestamp()) >= mtime
            except (TypeError, ValueError):
                return False
        return False

    def send_plain(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Write a complete response (for routes)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], root: Path, routes: dict[str, Route], delay: float) -> None:
        super().__init__(addr, _Handler)
        self.root = root.resolve()
        self.routes = routes
        self.delay = delay
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        host, port = self.server_address[:2]
        self.base_url = f"http://{host}:{port}"

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """Clients that hang up early (a crawler refusing a huge body) are no server error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def record(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1


class DemoServer:
    """A running server; use as a context manager or call ``stop()``."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="demo-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self._server.base_url

    @property
    def hits(self) -> Counter[str]:
        """Requests received per path (query strings dropped)."""
        return self._server.hits

    @property
    def delay(self) -> float:
        """Seconds every response waits; a test may change it while the server runs."""
        return self._server.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._server.delay = seconds

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_demo(
    host: str = "127.0.0.1",
    port: int = 0,
    root: Path = DEMO_ROOT,
    routes: dict[str, Route] | None = None,
    delay: float = 0.0,
) -> DemoServer:
    """Serve ``root`` (the demo site by default) on ``host:port`` (0: a free port) in a background thread.

    ``routes`` maps paths to handlers for hand-made responses; ``delay`` slows every request
    (seconds), which lets tests interrupt a crawl half-way.
    """
    return DemoServer(_Server((host, port), root, routes or {}, delay))
