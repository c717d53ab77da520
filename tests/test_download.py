"""download.fetch over a loopback HTTP server: resume, restart, cache hits, verification failures."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time

import pytest

from human_saliency.errors import DataError, DownloadError
from human_saliency.io.download import fetch, md5sum
from human_saliency.io.pins import OVERRIDES_ENV, DownloadLock, digest

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
    # neither dest nor its .part (nor the ETag kept to resume it): the next run starts clean
    assert [p.name for p in dest.parent.iterdir()] == ["a.bin.lock"]


def test_size_mismatch_names_file_and_values_and_deletes_it(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "cache" / "a.bin"

    with pytest.raises(DownloadError) as err:
        fetch(url, dest, size=len(DATA) + 1, md5=MD5)
    message = str(err.value)
    assert "a.bin" in message and str(len(DATA) + 1) in message and str(len(DATA)) in message
    assert [p.name for p in dest.parent.iterdir()] == ["a.bin.lock"]


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


def test_unpinned_source_warns_with_its_md5_and_the_lock_it_was_recorded_in(
    http_server: FileServer, tmp_path, caplog, downloads_lock
):
    url = http_server.add("a.bin", DATA)

    with caplog.at_level(logging.WARNING, logger="human_saliency.io.download"):
        fetch(url, tmp_path / "a.bin", size=None, md5=None)
    assert any(
        "no published checksum" in r.message and MD5 in r.message and str(downloads_lock) in r.message
        for r in caplog.records
    )


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


# --- flaky and hostile servers -----------------------------------------------------------------------


def test_a_stall_keeps_every_byte_received(http_server: FileServer, tmp_path):
    # The server sends 100 kB, then goes silent: what arrived must be on disk for the next run.
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    http_server.stall_after = [100_000]

    with pytest.raises(DownloadError, match="100000 bytes kept"):
        fetch(url, dest, size=len(DATA), md5=MD5, timeout_s=0.3, retries=0)
    assert dest.with_name("a.bin.part").stat().st_size == 100_000


def test_a_trickling_server_ends_in_an_error_within_a_bounded_time(http_server: FileServer, tmp_path):
    # A byte every 10 ms never trips a per-read timeout; the rate floor ends each try after timeout_s.
    url = http_server.add("a.bin", DATA[:400])
    http_server.trickle_s = 0.01
    started = time.monotonic()

    with pytest.raises(DownloadError, match=r"slower than 1000 B/s over 0.2 s .*gave up after 2 tries"):
        fetch(url, tmp_path / "a.bin", size=None, md5=None, timeout_s=0.2, min_bytes_per_s=1000, retries=1, backoff_s=0)
    assert time.monotonic() - started < 1.5
    assert len(http_server.requests) == 2


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def test_resume_sends_if_range_and_starts_over_when_the_file_changed(http_server: FileServer, tmp_path):
    old, new = DATA, os.urandom(len(DATA))
    url = http_server.add("a.bin", old)
    dest = tmp_path / "a.bin"
    http_server.cut_after = [100_000]
    with pytest.raises(DownloadError):
        fetch(url, dest, size=None, md5=None, retries=0)

    http_server.add("a.bin", new)  # the server's file changed between the two runs
    fetch(url, dest, size=None, md5=None, retries=0)
    assert dest.read_bytes() == new  # not old[:100000] + new[100000:]
    second = http_server.requests[1]
    assert (second.range, second.if_range) == ("bytes=100000-", _etag(old))


def test_resume_with_if_range_continues_an_unchanged_file(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    http_server.cut_after = [100_000]

    fetch(url, dest, size=None, md5=None, retries=1, backoff_s=0)
    assert dest.read_bytes() == DATA
    assert [(r.range, r.if_range) for r in http_server.requests] == [(None, None), ("bytes=100000-", _etag(DATA))]


def test_a_server_ignoring_if_range_cannot_splice_two_versions(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    http_server.cut_after = [100_000]
    with pytest.raises(DownloadError):
        fetch(url, dest, size=None, md5=None, retries=0)
    new = os.urandom(len(DATA))
    http_server.add("a.bin", new)
    http_server.if_range_ignored = True  # answers 206 from the new file, with the new ETag

    fetch(url, dest, size=None, md5=None, retries=1, backoff_s=0)
    assert dest.read_bytes() == new
    assert [r.range for r in http_server.requests] == [None, "bytes=100000-", None]


def test_unpinned_part_without_validators_is_started_over(http_server: FileServer, tmp_path):
    # No ETag, no Last-Modified, no pinned MD5: nothing could tell a spliced file, so no splicing.
    http_server.validators = False
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    http_server.cut_after = [100_000]
    with pytest.raises(DownloadError):
        fetch(url, dest, size=None, md5=None, retries=0)
    new = os.urandom(len(DATA))
    http_server.add("a.bin", new)

    fetch(url, dest, size=None, md5=None, retries=0)
    assert dest.read_bytes() == new
    assert http_server.requests[1].range is None


def test_pinned_part_without_validators_is_resumed(http_server: FileServer, tmp_path):
    http_server.validators = False  # the MD5 catches a splice
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    http_server.cut_after = [100_000]

    fetch(url, dest, size=len(DATA), md5=MD5, retries=1, backoff_s=0)
    assert dest.read_bytes() == DATA
    assert http_server.requests[1].range == "bytes=100000-"


def _refuse_html(path):
    if path.read_bytes().startswith(b"<"):
        raise DataError("a.bin: not the expected format")


def test_a_download_failing_its_check_is_discarded_not_cached(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", b"<html>503 Service Unavailable</html>")
    dest = tmp_path / "cache" / "a.bin"

    with pytest.raises(DownloadError, match=f"{url}: a.bin: not the expected format; discarded, not cached"):
        fetch(url, dest, size=None, md5=None, check=_refuse_html)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin.lock"]

    http_server.add("a.bin", DATA)
    assert fetch(url, dest, size=None, md5=None, check=_refuse_html).read_bytes() == DATA
    assert len(http_server.requests) == 2


@pytest.mark.parametrize("no_length", [False, True], ids=["content-length", "no-content-length"])
def test_a_download_over_max_bytes_is_stopped_and_discarded(http_server: FileServer, tmp_path, no_length):
    url = http_server.add("a.bin", DATA)
    http_server.no_length = no_length
    dest = tmp_path / "a.bin"

    with pytest.raises(DownloadError, match=f"{url}: more than max_bytes=100000 bytes; discarded"):
        fetch(url, dest, size=None, md5=None, max_bytes=100_000)
    assert not dest.exists() and not dest.with_name("a.bin.part").exists()


def test_two_runs_sharing_the_cache_download_once(http_server: FileServer, tmp_path):
    # Both find no cached file; without a lock both append to one .part and cache a doubled file.
    url = http_server.add("a.bin", DATA)
    http_server.delay_s = 0.3
    dest = tmp_path / "cache" / "a.bin"
    errors = []

    def run():
        try:
            fetch(url, dest, size=None, md5=None, retries=0)
        except DownloadError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert dest.read_bytes() == DATA
    assert len(http_server.requests) == 1  # the second waited, then found the first one's file


def test_a_held_cache_lock_is_waited_for_then_named(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "cache" / "a.bin"
    dest.parent.mkdir()
    with open(dest.with_name("a.bin.lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(DataError, match=r"a.bin.lock: held by another run .* gave up waiting after 0.2 s"):
            fetch(url, dest, size=None, md5=None, lock_wait_s=0.2)
    assert http_server.requests == []


def test_an_unusable_cache_folder_is_a_one_line_error(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    (tmp_path / "cache").write_text("a file where the cache folder should be")

    with pytest.raises(DownloadError, match="cache/sub: cannot use it as a download cache folder"):
        fetch(url, tmp_path / "cache" / "sub" / "a.bin", size=None, md5=None)


# --- downloads.lock: files without a published checksum are recorded once, then verified ------------------


SHA = hashlib.sha256(DATA).hexdigest()


def test_first_download_of_an_unpinned_file_is_recorded_and_later_ones_verified(
    http_server: FileServer, tmp_path, downloads_lock
):
    url = http_server.add("masks.zip", DATA)
    fetch(url, tmp_path / "one" / "masks.zip", size=None, md5=None)
    entry = json.loads(downloads_lock.read_text())["files"][url]
    assert (entry["filename"], entry["size"], entry["sha256"]) == ("masks.zip", len(DATA), SHA)

    # Another machine (a fresh cache) gets the same bytes: verified, the lock unchanged.
    before = downloads_lock.read_bytes()
    fetch(url, tmp_path / "two" / "masks.zip", size=None, md5=None)
    assert downloads_lock.read_bytes() == before

    changed = bytearray(DATA)
    changed[1234] ^= 0x01
    http_server.add("masks.zip", bytes(changed))
    with pytest.raises(DownloadError) as info:
        fetch(url, tmp_path / "three" / "masks.zip", size=None, md5=None)
    message = str(info.value)
    assert "masks.zip: does not match its entry in" in message and str(downloads_lock) in message
    assert SHA in message and "\n" not in message
    assert not (tmp_path / "three" / "masks.zip").exists() and not (tmp_path / "three" / "masks.zip.part").exists()


def test_a_cached_file_that_no_longer_matches_its_entry_is_downloaded_again(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    dest = tmp_path / "a.bin"
    fetch(url, dest, size=None, md5=None)
    dest.write_bytes(b"corrupted on disk")
    assert fetch(url, dest, size=None, md5=None).read_bytes() == DATA
    assert len(http_server.requests) == 2


def test_fully_pinned_files_need_no_entry_but_prefix_pinned_ones_do(http_server: FileServer, tmp_path, downloads_lock):
    url = http_server.add("a.bin", DATA)
    fetch(url, tmp_path / "a.bin", size=len(DATA), md5=MD5)
    fetch(url, tmp_path / "b.bin", size=None, md5=None, sha256=SHA)
    assert not downloads_lock.exists()
    fetch(url, tmp_path / "c.bin", size=None, md5=None, sha256=SHA[:8])  # as torchvision's file names pin them
    assert list(json.loads(downloads_lock.read_text())["files"]) == [url]


def test_sha256_pin_is_checked_and_a_mismatch_deletes_the_file(http_server: FileServer, tmp_path):
    url = http_server.add("a.bin", DATA)
    with pytest.raises(DownloadError, match=f"a.bin: SHA-256 mismatch: expected {'0' * 64}, got {SHA}"):
        fetch(url, tmp_path / "a.bin", size=None, md5=None, sha256="0" * 64)
    assert not list(tmp_path.glob("a.bin*[!k]"))  # neither the file nor its part; the flock file may stay


def test_an_untrusted_first_download_is_recorded_kept_and_refused_once(http_server: FileServer, tmp_path):
    url = http_server.add("weights.pt", DATA)
    dest = tmp_path / "weights.pt"
    with pytest.raises(DownloadError, match="weights.pt: first download of a file with no published checksum.*check"):
        fetch(url, dest, size=None, md5=None, trust_first_download=False, first_download_hint="check it")
    assert dest.read_bytes() == DATA
    # The next run finds the recorded entry, which now verifies the file: no second download.
    assert fetch(url, dest, size=None, md5=None, trust_first_download=False) == dest
    assert len(http_server.requests) == 1


def test_mirrors_are_tried_in_order_and_verified_alike(http_server: FileServer, tmp_path):
    primary = http_server.url("thor/voc.tar")  # not served: 404
    mirror = http_server.add("host/voc.tar", DATA)
    dest = tmp_path / "voc.tar"
    assert fetch(primary, dest, size=len(DATA), md5=MD5, mirrors=[mirror], retries=0) == dest
    assert [r.path for r in http_server.requests] == ["/thor/voc.tar", "/host/voc.tar"]

    http_server.add("host/voc.tar", DATA[:-1] + b"x")  # a mirror serving other bytes fails the same checks
    with pytest.raises(DownloadError, match="MD5 mismatch"):
        fetch(primary, tmp_path / "again.tar", size=len(DATA), md5=MD5, mirrors=[mirror], retries=0)


def test_when_no_mirror_answers_the_error_names_each(http_server: FileServer, tmp_path):
    urls = [http_server.url("a/x.tar"), http_server.url("b/x.tar")]
    with pytest.raises(DownloadError) as info:
        fetch(urls[0], tmp_path / "x.tar", size=None, md5=None, mirrors=urls[1:], retries=0)
    message = str(info.value)
    assert message.startswith("no mirror answered") and all(f"{url}: HTTP 404" in message for url in urls)


def test_overrides_redirect_to_the_mirror_at_the_real_path_and_replace_pins(
    http_server: FileServer, tmp_path, monkeypatch, caplog
):
    real = "https://example.org/releases/v1/a.bin"
    http_server.add("example.org/releases/v1/a.bin", DATA)
    overrides = tmp_path / "overrides.json"
    mirror = http_server.url("")
    overrides.write_text(json.dumps({"mirror": mirror, "pins": {real: {"size": len(DATA), "sha256": SHA}}}))
    monkeypatch.setenv(OVERRIDES_ENV, str(overrides))
    with caplog.at_level(logging.WARNING, logger="human_saliency.io.download"):
        fetch(real, tmp_path / "a.bin", size=123, md5="0" * 32)  # the published pins, replaced
    assert [r.path for r in http_server.requests] == ["/example.org/releases/v1/a.bin"]
    assert any(str(overrides) in r.message for r in caplog.records)


def test_a_damaged_lock_file_is_an_error_naming_it(tmp_path):
    lock = DownloadLock(tmp_path / "downloads.lock")
    lock.path.write_text("{not json")
    (tmp_path / "a.bin").write_bytes(DATA)
    with pytest.raises(DataError, match="downloads.lock: not a downloads lock"):
        lock.verify("http://x/a.bin", "a.bin", digest(tmp_path / "a.bin"))
