"""download.fetch over a loopback HTTP server: resume, restart, cache hits, verification failures."""

from __future__ import annotations

import hashlib
import logging
import os

import pytest

from human_saliency.errors import DownloadError
from human_saliency.io.download import fetch, md5sum

from httpserver import FileServer

DATA = os.urandom(300_000)  # several 1 MiB-chunk-free reads' worth; odd length on purpose
MD5 = hashlib.md5(DATA).hexdigest()


def test_md5sum_matches_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    assert md5sum(path) == MD5


def test_full_download_verifies_and_leaves_no_part(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "cache" / "a.bin"

    assert fetch(url, dest, size=len(DATA), md5=MD5) == dest
    assert dest.read_bytes() == DATA
    assert not dest.with_name("a.bin.part").exists()
    assert [(r.path, r.range) for r in http_server.requests] == [("/a.bin", None)]


def test_interrupted_download_resumes_from_part_on_next_run(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    http_server.cut_after = [100_000]

    with pytest.raises(DownloadError, match="100000 bytes kept"):
        fetch(url, dest, size=len(DATA), md5=MD5, retries=0)
    assert not dest.exists()
    assert dest.with_name("a.bin.part").stat().st_size == 100_000

    fetch(url, dest, size=len(DATA), md5=MD5, retries=0)
    assert dest.read_bytes() == DATA
    assert http_server.requests[1].range == "bytes=100000-"


def test_interruption_is_retried_within_one_call(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    http_server.cut_after = [70_000, 50_000]  # two cuts, then a whole response

    fetch(url, dest, size=len(DATA), md5=MD5, retries=2, backoff_s=0)
    assert dest.read_bytes() == DATA
    assert [r.range for r in http_server.requests] == [None, "bytes=70000-", "bytes=120000-"]


def test_retries_exhausted_raises_download_error(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    http_server.cut_after = [10, 10, 10]

    with pytest.raises(DownloadError, match="gave up after 3 tries"):
        fetch(url, tmp_path / "a.bin", size=len(DATA), md5=MD5, retries=2, backoff_s=0)
    assert len(http_server.requests) == 3


def test_server_ignoring_range_restarts_the_download(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(b"x" * 5_000)  # not a prefix of DATA: must be discarded
    http_server.ignore_range = True

    fetch(url, dest, size=len(DATA), md5=MD5)
    assert dest.read_bytes() == DATA
    assert http_server.requests[0].range == "bytes=5000-"


def test_complete_part_answered_416_is_verified_and_kept(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(DATA)

    fetch(url, dest, size=len(DATA), md5=MD5)
    assert dest.read_bytes() == DATA
    assert [r.range for r in http_server.requests] == [f"bytes={len(DATA)}-"]


def test_cache_hit_makes_no_request(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    dest.write_bytes(DATA)

    assert fetch(url, dest, size=len(DATA), md5=MD5) == dest
    assert http_server.requests == []


def test_corrupt_cached_file_is_downloaded_again(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"stale")

    fetch(url, dest, size=len(DATA), md5=MD5)
    assert dest.read_bytes() == DATA
    assert len(http_server.requests) == 1


def test_checksum_mismatch_names_file_and_values_and_deletes_it(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "cache" / "a.bin"
    wrong = "0" * 32

    with pytest.raises(DownloadError) as err:
        fetch(url, dest, size=len(DATA), md5=wrong)
    message = str(err.value)
    assert "a.bin" in message and wrong in message and MD5 in message
    assert list(dest.parent.iterdir()) == []  # neither dest nor its .part: the next run starts clean


def test_size_mismatch_names_file_and_values_and_deletes_it(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "cache" / "a.bin"

    with pytest.raises(DownloadError) as err:
        fetch(url, dest, size=len(DATA) + 1, md5=MD5)
    message = str(err.value)
    assert "a.bin" in message and str(len(DATA) + 1) in message and str(len(DATA)) in message
    assert list(dest.parent.iterdir()) == []


def test_transient_http_error_is_retried(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    http_server.fail_with = [503]

    fetch(url, tmp_path / "a.bin", size=len(DATA), md5=MD5, retries=1, backoff_s=0)
    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert len(http_server.requests) == 2


def test_unreachable_server_raises_download_error(tmp_path):
    with FileServer(tmp_path / "www") as server:
        url = server.add("a.bin", DATA)
    # the server is closed now: every try is refused

    with pytest.raises(DownloadError, match="a.bin: .*gave up after 2 tries"):
        fetch(url, tmp_path / "a.bin", size=None, md5=None, retries=1, backoff_s=0)
    assert not (tmp_path / "a.bin").exists()


def test_http_404_is_not_retried(http_server: FileServer, tmp_path):
    url = http_server.url("missing.bin")

    with pytest.raises(DownloadError, match="missing.bin: HTTP 404"):
        fetch(url, tmp_path / "m.bin", size=None, md5=None, retries=3, backoff_s=0)
    assert len(http_server.requests) == 1


def test_unpinned_source_warns_with_its_md5(http_server: FileServer, tmp_path, caplog):
    url = http_server.add("a.bin", DATA)

    with caplog.at_level(logging.WARNING, logger="human_saliency.io.download"):
        fetch(url, tmp_path / "a.bin", size=None, md5=None)
    assert any("unpinned" in r.message and MD5 in r.message for r in caplog.records)


def test_file_url_download_and_resume(tmp_path):
    source = tmp_path / "mirror" / "a.bin"
    source.parent.mkdir()
    source.write_bytes(DATA)
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(DATA[:1234])

    fetch(source.as_uri(), dest, size=len(DATA), md5=MD5)
    assert dest.read_bytes() == DATA


def test_file_url_missing_source_names_it(tmp_path):
    missing = tmp_path / "nope.bin"
    with pytest.raises(DownloadError, match="nope.bin"):
        fetch(missing.as_uri(), tmp_path / "a.bin", size=None, md5=None)
