"""A loopback HTTP file server for tests: honours Range and If-Range, records requests, misbehaves on demand."""

from __future__ import annotations

import email.utils
import hashlib
import re
import threading
import time
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
    if_range: str | None = None


class FileServer:
    """Serve the files under ``root`` on 127.0.0.1 (a free port) while used as a context manager.

    Knobs, changeable between requests:
    - ``cut_after``: a queue of byte counts; each response pops one and closes the connection after
      sending that many body bytes (a simulated interruption); None or an empty queue: the whole body.
    - ``ignore_range``: answer every request 200 with the whole file, as servers without Range do.
    - ``fail_with``: a queue of HTTP status codes; each request pops one and gets that error instead.
    - ``validators``: send an ETag (the body's MD5) and Last-Modified, and honour If-Range with them.
    - ``if_range_ignored``: answer a Range request 206 even when its If-Range no longer matches.
    - ``no_length``: send no Content-Length (the body ends when the connection closes).
    - ``stall_after``: a queue of byte counts; each response pops one, sends that many body bytes, then
      holds the connection silent for ``stall_s`` seconds before closing it.
    - ``trickle_s``: send the body one byte at a time, this many seconds apart.
    - ``delay_s``: wait this long between the headers and the body.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cut_after: list[int | None] = []
        self.ignore_range = False
        self.fail_with: list[int] = []
        self.validators = True
        self.if_range_ignored = False
        self.no_length = False
        self.stall_after: list[int] = []
        self.stall_s = 2.0
        self.trickle_s = 0.0
        self.delay_s = 0.0
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

    def _record(self, seen: Seen) -> tuple[int | None, int | None, int | None]:
        """Log a request; return the error status to answer it with and the byte counts to cut and stall at."""
        with self._lock:
            self.requests.append(seen)
            error = self.fail_with.pop(0) if self.fail_with else None
            cut = self.cut_after.pop(0) if self.cut_after and error is None else None
            stall = self.stall_after.pop(0) if self.stall_after and error is None else None
            return error, cut, stall

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
            range_header, if_range = self.headers.get("Range"), self.headers.get("If-Range")
            error, cut, stall = server._record(Seen(self.path, range_header, if_range))
            if error is not None:
                self.send_error(error)
                return
            path = server.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            validators = _validators(path, data) if server.validators else {}
            match = _RANGE.match(range_header or "")
            changed = if_range is not None and not server.if_range_ignored and if_range not in validators.values()
            if match is None or server.ignore_range or changed:
                self._send(200, data, validators, cut, stall)
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
            headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}", **validators}
            self._send(206, data[start : end + 1], headers, cut, stall)

        def _send(self, status: int, body: bytes, headers: dict[str, str], cut: int | None, stall: int | None) -> None:
            self.send_response(status)
            if not server.no_length:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.close_connection = True
            time.sleep(server.delay_s)
            # Cutting: send part of the body, then drop the connection (HTTP/1.0 closes it on return).
            body = body if cut is None else body[:cut]
            try:
                if stall is not None:
                    self.wfile.write(body[:stall])
                    time.sleep(server.stall_s)
                elif server.trickle_s:
                    for k in range(len(body)):
                        self.wfile.write(body[k : k + 1])
                        time.sleep(server.trickle_s)
                else:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first, as tests expect
                pass

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    return Handler


def _validators(path: Path, data: bytes) -> dict[str, str]:
    return {
        "ETag": f'"{hashlib.md5(data).hexdigest()}"',
        "Last-Modified": email.utils.formatdate(path.stat().st_mtime, usegmt=True),
    }


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    """A running FileServer serving ``tmp_path/www``."""
    with FileServer(tmp_path / "www") as server:
        yield server
