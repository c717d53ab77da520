"""fetch_sources end to end over loopback, with tiny archives in the real sources' layouts."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from human_saliency.errors import DataError, DownloadError
from human_saliency.io.files import atomic_dir, read_json
from human_saliency.params import RemoteParams, SourceSpec, load_params
from human_saliency.sources.remote import fetch_sources

from conftest import ROOT
from httpserver import FileServer

VOC_ID = "2008_000251"
STEM = "i05june05_static_street_boston_p1010764"
BENCHMARK = "ML-Interpretability-Evaluation-Benchmark-master"
MASKS = f"{BENCHMARK}/Image/PASCAL_VOC_2012/human_attention_mask"


def _jpeg(mode: str = "RGB", size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, format="JPEG")
    return buf.getvalue()


def _voc_tar(folder: Path) -> bytes:
    """``VOCtrainval_11-May-2012.tar``: VOCdevkit/VOC2012/{JPEGImages,Annotations,ImageSets/Main}."""
    root = folder / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    (root / "JPEGImages" / f"{VOC_ID}.jpg").write_bytes(_jpeg())
    (root / "Annotations" / f"{VOC_ID}.xml").write_text(
        f"<annotation><filename>{VOC_ID}.jpg</filename><object><name>aeroplane</name></object></annotation>"
    )
    (root / "ImageSets" / "Main" / "trainval.txt").write_text(f"{VOC_ID}\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(folder / "VOCdevkit", arcname="VOCdevkit")  # with directory entries, as the real tar has
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _spec(server: FileServer, filename: str, data: bytes, dest: str, *, pin: bool) -> SourceSpec:
    url = server.add(filename, data)
    if not pin:
        return SourceSpec(url=url, mirrors=[], filename=filename, size=None, md5=None, dest=dest)
    md5 = hashlib.md5(data).hexdigest()
    return SourceSpec(url=url, mirrors=[], filename=filename, size=len(data), md5=md5, dest=dest)


def _archives(tmp_path: Path) -> dict[str, tuple[str, bytes, str, bool]]:
    """Per source: filename, bytes, dest and whether params pin it, as the real sources are."""
    return {
        "voc2012": ("VOCtrainval_11-May-2012.tar", _voc_tar(tmp_path / "build"), "voc", True),
        "human_masks": (
            f"{BENCHMARK}.zip",
            _zip(
                {
                    f"{MASKS}/aeroplane/{VOC_ID}.jpg": _jpeg("L"),
                    f"{MASKS}/person/{VOC_ID}.jpg": _jpeg("L"),  # one id under two class folders
                    f"{BENCHMARK}/README.md": b"# benchmark\n",
                }
            ),
            "human_masks",
            False,
        ),
        "mit1003_stimuli": ("ALLSTIMULI.zip", _zip({f"ALLSTIMULI/{STEM}.jpeg": _jpeg()}), "mit1003", True),
        "mit1003_fixations": (
            "ALLFIXATIONMAPS.zip",
            _zip(
                {
                    f"ALLFIXATIONMAPS/{STEM}_fixMap.jpg": _jpeg("L"),
                    f"ALLFIXATIONMAPS/{STEM}_fixPts.jpg": _jpeg("L"),
                }
            ),
            "mit1003",
            False,
        ),
    }


def _remote(server: FileServer, tmp_path: Path, archives: dict, **overrides) -> RemoteParams:
    specs = {
        name: _spec(server, filename, data, dest, pin=pin) for name, (filename, data, dest, pin) in archives.items()
    }
    section = load_params(ROOT / "params.yaml").data.remote.model_dump(exclude=set(specs))
    options = {**section, "cache_dir": str(tmp_path / "cache"), "timeout_s": 5.0, "retries": 0, **overrides}
    return RemoteParams(**options, **specs)


def _cached(tmp_path: Path, filename: str) -> list[Path]:
    """The cached copies of ``filename``, wherever the cache keeps them."""
    return sorted((tmp_path / "cache").rglob(filename))


def test_fetch_sources_builds_the_raw_tree_and_manifest(http_server: FileServer, tmp_path):
    archives = _archives(tmp_path)
    remote = _remote(http_server, tmp_path, archives, retries=1)
    raw = tmp_path / "raw"

    manifest = fetch_sources(remote, raw)

    voc = raw / "voc" / "VOCdevkit" / "VOC2012"
    assert (voc / "JPEGImages" / f"{VOC_ID}.jpg").is_file()
    assert (voc / "Annotations" / f"{VOC_ID}.xml").is_file()
    assert (voc / "ImageSets" / "Main" / "trainval.txt").read_text() == f"{VOC_ID}\n"
    mask_dir = raw / "human_masks" / MASKS
    assert sorted(p.relative_to(mask_dir).as_posix() for p in mask_dir.rglob("*.jpg")) == [
        f"aeroplane/{VOC_ID}.jpg",
        f"person/{VOC_ID}.jpg",
    ]
    assert sorted(p.name for p in (raw / "mit1003").iterdir()) == ["ALLFIXATIONMAPS", "ALLSTIMULI"]
    assert (raw / "mit1003" / "ALLSTIMULI" / f"{STEM}.jpeg").is_file()
    assert sorted(p.name for p in (raw / "mit1003" / "ALLFIXATIONMAPS").iterdir()) == [
        f"{STEM}_fixMap.jpg",
        f"{STEM}_fixPts.jpg",
    ]

    assert list(manifest) == ["voc2012", "human_masks", "mit1003_stimuli", "mit1003_fixations"]
    for name, (filename, data, dest, pin) in archives.items():
        entry = manifest[name]
        assert entry["url"] == http_server.url(filename)
        assert entry["filename"] == filename
        assert entry["size"] == len(data)
        assert entry["md5"] == hashlib.md5(data).hexdigest()
        assert entry["pinned"] is pin
        assert entry["dest"] == dest
        assert [p.read_bytes() for p in _cached(tmp_path, filename)] == [data]
    # VOCdevkit, VOC2012, JPEGImages, Annotations, ImageSets, Main + 3 files
    assert manifest["voc2012"]["members"] == 9
    assert read_json(raw / "SOURCES.json") == manifest
    assert len(http_server.requests) == 4


def test_second_run_uses_the_cache_and_makes_no_request(http_server: FileServer, tmp_path):
    remote = _remote(http_server, tmp_path, _archives(tmp_path))

    first = fetch_sources(remote, tmp_path / "raw1")
    assert len(http_server.requests) == 4
    second = fetch_sources(remote, tmp_path / "raw2")
    assert len(http_server.requests) == 4
    assert first == second
    assert (tmp_path / "raw2" / "mit1003" / "ALLSTIMULI" / f"{STEM}.jpeg").is_file()


# --- bad downloads of unpinned sources are never cached for good --------------------------------------


HTML = b"<!DOCTYPE html><html><body><h1>Rate limit exceeded</h1></body></html>"


@pytest.mark.parametrize("fault", ["html-page-with-200", "body-cut-without-length"])
def test_a_bad_download_is_not_cached_and_the_next_run_fetches_again(http_server: FileServer, tmp_path, fault):
    archives = _archives(tmp_path)
    good = archives["human_masks"][1]
    remote = _remote(http_server, tmp_path, archives)
    if fault == "html-page-with-200":
        http_server.add(f"{BENCHMARK}.zip", HTML)
    else:
        http_server.no_length = True
        http_server.cut_after = [None, len(good) // 2]  # the tar comes whole; the masks zip is cut
    with pytest.raises(
        DownloadError, match=rf"{BENCHMARK}.zip: truncated or corrupt archive .*; discarded, not cached"
    ):
        fetch_sources(remote, tmp_path / "raw1")
    assert _cached(tmp_path, f"{BENCHMARK}.zip") == []

    http_server.add(f"{BENCHMARK}.zip", good)
    http_server.no_length, http_server.cut_after = False, []
    manifest = fetch_sources(remote, tmp_path / "raw2")
    assert manifest["human_masks"]["md5"] == hashlib.md5(good).hexdigest()


def test_a_cached_unpinned_archive_that_no_longer_matches_its_lock_entry_is_fetched_again(
    http_server: FileServer, tmp_path
):
    remote = _remote(http_server, tmp_path, _archives(tmp_path))
    fetch_sources(remote, tmp_path / "raw1")
    [cached] = _cached(tmp_path, "ALLFIXATIONMAPS.zip")
    cached.write_bytes(HTML)  # a disk error, or a hand-edited cache
    requests = len(http_server.requests)

    fetch_sources(remote, tmp_path / "raw2")
    assert len(http_server.requests) == requests + 1  # fetched again, once
    assert (tmp_path / "raw2" / "mit1003" / "ALLFIXATIONMAPS" / f"{STEM}_fixPts.jpg").is_file()


def test_a_cached_archive_from_before_the_lock_is_checked_before_it_is_recorded(
    http_server: FileServer, tmp_path, downloads_lock
):
    remote = _remote(http_server, tmp_path, _archives(tmp_path))
    fetch_sources(remote, tmp_path / "raw1")
    [cached] = _cached(tmp_path, "ALLFIXATIONMAPS.zip")
    cached.write_bytes(HTML)  # what an older version cached, with no lock yet
    downloads_lock.unlink()

    fetch_sources(remote, tmp_path / "raw2")  # the page is not an archive: never recorded, fetched again
    assert json.loads(downloads_lock.read_text())["files"][remote.mit1003_fixations.url]["size"] != len(HTML)


def test_an_unpinned_archive_that_fails_to_extract_is_deleted_and_said_so(http_server: FileServer, tmp_path):
    archives = _archives(tmp_path)
    filename, data, dest, pinned = archives["mit1003_fixations"]
    corrupt = bytearray(data)
    corrupt[data.index(_jpeg("L")) + 200] ^= 0xFF  # inside a stored member: its listing reads, its CRC fails
    archives["mit1003_fixations"] = (filename, bytes(corrupt), dest, pinned)
    remote = _remote(http_server, tmp_path, archives)

    with pytest.raises(DataError, match=r"ALLFIXATIONMAPS.zip: truncated or corrupt archive .*deleted it from"):
        fetch_sources(remote, tmp_path / "raw")
    assert not _cached(tmp_path, "ALLFIXATIONMAPS.zip")


def test_a_pinned_cached_archive_is_kept_when_extraction_fails(http_server: FileServer, tmp_path):
    # The MD5 says it is the very file params name: downloading it again cannot help.
    archives = _archives(tmp_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("VOCdevkit/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    archives["voc2012"] = ("VOCtrainval_11-May-2012.tar", buf.getvalue(), "voc", True)
    remote = _remote(http_server, tmp_path, archives)

    with pytest.raises(DataError, match="unsafe member 'VOCdevkit/link': symbolic link") as info:
        fetch_sources(remote, tmp_path / "raw")
    assert "deleted" not in str(info.value)
    assert len(_cached(tmp_path, "VOCtrainval_11-May-2012.tar")) == 1


def test_a_changed_url_is_fetched_again_and_recorded(http_server: FileServer, tmp_path):
    archives = _archives(tmp_path)
    remote = _remote(http_server, tmp_path, archives)
    fetch_sources(remote, tmp_path / "raw1")

    new = _zip({f"ALLFIXATIONMAPS/{STEM}_fixMap.jpg": _jpeg("L", (4, 4)), f"ALLFIXATIONMAPS/{STEM}_fixPts.jpg": b"v2"})
    url = http_server.add("v2/ALLFIXATIONMAPS.zip", new)
    moved = remote.mit1003_fixations.model_copy(update={"url": url})
    manifest = fetch_sources(remote.model_copy(update={"mit1003_fixations": moved}), tmp_path / "raw2")

    assert http_server.requests[-1].path == "/v2/ALLFIXATIONMAPS.zip"
    assert manifest["mit1003_fixations"]["url"] == url
    assert manifest["mit1003_fixations"]["md5"] == hashlib.md5(new).hexdigest()
    assert (tmp_path / "raw2" / "mit1003" / "ALLFIXATIONMAPS" / f"{STEM}_fixPts.jpg").read_bytes() == b"v2"


# --- as the download stage runs it: inside atomic_dir ---------------------------------------------------


def test_a_hostile_archive_leaves_no_output_no_temporary_folder_and_nothing_outside(http_server: FileServer, tmp_path):
    archives = _archives(tmp_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        escape = tarfile.TarInfo("VOCdevkit/escape")
        escape.type, escape.linkname = tarfile.SYMTYPE, ".."
        tf.addfile(escape)
        payload = tarfile.TarInfo("VOCdevkit/escape/outside.txt")
        payload.size = 5
        tf.addfile(payload, io.BytesIO(b"owned"))
    archives["voc2012"] = ("VOCtrainval_11-May-2012.tar", buf.getvalue(), "voc", True)
    remote = _remote(http_server, tmp_path, archives)
    out = tmp_path / "data" / "raw"

    with pytest.raises(DataError, match="unsafe member 'VOCdevkit/escape': symbolic link"), atomic_dir(out) as tmp:
        fetch_sources(remote, tmp)
    assert sorted(p.name for p in out.parent.iterdir()) == [".raw.lock"]  # no output, no temporary folder
    assert not list(tmp_path.rglob("outside.txt"))
