"""fetch_sources end to end over loopback, with tiny archives in the real sources' layouts."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

from PIL import Image

from human_saliency.io.files import read_json
from human_saliency.params import RemoteParams, SourceSpec
from human_saliency.sources.remote import fetch_sources

from httpserver import FileServer

VOC_ID = "2008_000251"
STEM = "i05june05_static_street_boston_p1010764"
BENCHMARK = "ML-Interpretability-Evaluation-Benchmark-master"


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
        return SourceSpec(url=url, filename=filename, size=None, md5=None, dest=dest)
    md5 = hashlib.md5(data).hexdigest()
    return SourceSpec(url=url, filename=filename, size=len(data), md5=md5, dest=dest)


def test_fetch_sources_builds_the_raw_tree_and_manifest(http_server: FileServer, tmp_path):
    masks = f"{BENCHMARK}/Image/PASCAL_VOC_2012/human_attention_mask"
    archives = {
        "voc2012": ("VOCtrainval_11-May-2012.tar", _voc_tar(tmp_path / "build"), "voc", True),
        "human_masks": (
            f"{BENCHMARK}.zip",
            _zip(
                {
                    f"{masks}/aeroplane/{VOC_ID}.jpg": _jpeg("L"),
                    f"{masks}/person/{VOC_ID}.jpg": _jpeg("L"),  # one id under two class folders
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
            True,
        ),
    }
    specs = {
        name: _spec(http_server, filename, data, dest, pin=pin)
        for name, (filename, data, dest, pin) in archives.items()
    }
    remote = RemoteParams(cache_dir=str(tmp_path / "cache"), timeout_s=5.0, retries=1, **specs)
    raw = tmp_path / "raw"

    manifest = fetch_sources(remote, raw)

    voc = raw / "voc" / "VOCdevkit" / "VOC2012"
    assert (voc / "JPEGImages" / f"{VOC_ID}.jpg").is_file()
    assert (voc / "Annotations" / f"{VOC_ID}.xml").is_file()
    assert (voc / "ImageSets" / "Main" / "trainval.txt").read_text() == f"{VOC_ID}\n"
    mask_dir = raw / "human_masks" / masks
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
        assert (tmp_path / "cache" / filename).read_bytes() == data
    # VOCdevkit, VOC2012, JPEGImages, Annotations, ImageSets, Main + 3 files
    assert manifest["voc2012"]["members"] == 9
    assert read_json(raw / "SOURCES.json") == manifest
    assert len(http_server.requests) == 4


def test_second_run_uses_the_cache_and_makes_no_request(http_server: FileServer, tmp_path):
    data = _zip({f"ALLSTIMULI/{STEM}.jpeg": _jpeg()})
    spec = _spec(http_server, "ALLSTIMULI.zip", data, "mit1003", pin=True)
    remote = RemoteParams(
        cache_dir=str(tmp_path / "cache"),
        timeout_s=5.0,
        retries=1,
        voc2012=spec,
        human_masks=spec,
        mit1003_stimuli=spec,
        mit1003_fixations=spec,
    )

    first = fetch_sources(remote, tmp_path / "raw1")
    assert len(http_server.requests) == 1  # the same file four times: fetched once, then cache hits
    second = fetch_sources(remote, tmp_path / "raw2")
    assert len(http_server.requests) == 1
    assert first == second
    assert (tmp_path / "raw2" / "mit1003" / "ALLSTIMULI" / f"{STEM}.jpeg").is_file()
