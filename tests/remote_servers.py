"""Real servers for remote catalogs: an HTTP server over the samples and a local S3 (moto).

The HTTP server answers like a real image host would, including its failures: ``/missing/...``
is a 404, ``/flaky/<n>/<path>`` answers 500 ``n`` times before serving the file, ``/endless.jpg``
streams bytes without a Content-Length until the client hangs up, ``/oversized.jpg`` declares a
size above any limit. Every request is counted per path, so tests can check retries happened.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


class CatalogServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.hits: Counter = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: CatalogServer

    def log_message(self, *args) -> None:  # quiet: the tests count hits instead
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.hits[(self.command, path)] += 1
            gets = self.server.hits[("GET", path)]
        if path.startswith("/missing/"):
            return self._status(404)
        if path == "/oversized.jpg":
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            return  # declared, never sent: a reader must refuse it before reading
        if path == "/endless.jpg":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            if body:
                with contextlib.suppress(OSError):  # the reader hangs up past its limit
                    while True:
                        self.wfile.write(b"\xff" * 65536)
            self.close_connection = True
            return
        if path.startswith("/flaky/"):
            _, _, failures, rest = path.split("/", 3)
            if body and gets <= int(failures):
                return self._status(500)
            path = "/" + rest
        file = (self.server.root / path.lstrip("/")).resolve()
        if self.server.root not in file.parents or not file.is_file():
            return self._status(404)
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _status(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def catalog_http_server(root: Path = SAMPLES) -> Iterator[CatalogServer]:
    server = CatalogServer(root.resolve())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def local_s3(monkeypatch) -> Iterator[str]:
    """A real S3-compatible server (moto) on a free port; the environment points AWS clients
    (s3fs included) at it. Yields its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    from fashiontag.client import remote

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": endpoint}.items():
        monkeypatch.setenv(key, value)
    remote._filesystem.cache_clear()  # a new endpoint: new filesystem instances
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield endpoint
    finally:
        server.stop()
        remote._filesystem.cache_clear()
        s3fs.S3FileSystem.clear_instance_cache()
