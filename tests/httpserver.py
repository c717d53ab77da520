"""A loopback HTTP file server for tests: honours Range, records requests, can cut or ignore ranges."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Seen:
    """One request the server got."""

    path: str
    range: str | None


class FileServer:
    """Serve the files under ``root`` on 127.0.0.1 (a free port) while used as a context manager.

    Knobs, changeable between requests:
    - ``cut_after``: a queue of byte counts; each response pops one and closes the connection after
      sending that many body bytes (a simulated interruption). Empty: responses are whole.
    - ``ignore_range``: answer every request 200 with the whole file, as servers without Range do.
    - ``fail_with``: a queue of HTTP status codes; each request pops one and gets that error instead.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cut_after: list[int] = []
        self.ignore_range = False
        self.fail_with: list[int] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # Poll often so that shutdown() returns at once rather than after the default 0.5 s.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)

    def url(self, name: str) -> str:
        """The URL of the file ``root/name``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def add(self, name: str, data: bytes) -> str:
        """Write ``data`` as ``root/name`` and return its URL."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return self.url(name)

    def _record(self, seen: Seen) -> tuple[int | None, int | None]:
        """Log a request; return the error status to answer it with and the byte count to cut at."""
        with self._lock:
            self.requests.append(seen)
            error = self.fail_with.pop(0) if self.fail_with else None
            return error, (self.cut_after.pop(0) if self.cut_after and error is None else None)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            error, cut = server._record(Seen(self.path, range_header))
            if error is not None:
                self.send_error(error)
                return
            path = server.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            match = _RANGE.match(range_header or "")
            if match is None or server.ignore_range:
                self._send(200, data, {}, cut)
                return
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            end = min(end, len(data) - 1)
            headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
            self._send(206, data[start : end + 1], headers, cut)

        def _send(self, status: int, body: bytes, headers: dict[str, str], cut: int | None) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            # Cutting: send part of the body, then drop the connection (HTTP/1.0 closes it on return).
            self.wfile.write(body if cut is None else body[:cut])
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    return Handler


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    """A running FileServer serving ``tmp_path/www``."""
    with FileServer(tmp_path / "www") as server:
        yield server
