"""MIT1003: pairing stimuli with fixation files by stem, thresholding the JPEG-blurred points."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from human_saliency.errors import DataError
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.sources.mit1003 import index_stimuli, load_fixmap, load_fixpts


def test_index_stimuli_pairs_by_stem(tmp_path):
    stimuli, maps = tmp_path / "ALLSTIMULI", tmp_path / "ALLFIXATIONMAPS"
    stimuli.mkdir()
    maps.mkdir()
    for stem in ("i2", "i1"):
        Image.new("RGB", (8, 6)).save(stimuli / f"{stem}.jpeg")
        Image.new("L", (8, 6)).save(maps / f"{stem}_fixMap.jpg")
    Image.new("L", (8, 6)).save(maps / "i1_fixPts.jpg")
    (stimuli / "Thumbs.db").write_bytes(b"")
    index = index_stimuli(stimuli, maps)
    assert [s.stem for s in index] == ["i1", "i2"]
    assert index[0].fixmap == maps / "i1_fixMap.jpg" and index[0].fixpts == maps / "i1_fixPts.jpg"
    assert index[1].fixmap == maps / "i2_fixMap.jpg" and index[1].fixpts is None


def test_fixation_points_survive_jpeg_blur(tmp_path):
    points = np.zeros((60, 80), dtype=np.uint8)
    where = [(0, 0), (5, 5), (20, 30), (40, 41), (59, 79)]
    for y, x in where:
        points[y, x] = 255
    Image.fromarray(points).save(tmp_path / "p.jpg", quality=75)
    mask = load_fixpts(tmp_path / "p.jpg")
    assert mask.dtype == bool and mask.shape == (60, 80)
    assert sorted(zip(*np.nonzero(mask), strict=False)) == where


def test_load_fixmap_is_unit_range(tmp_path):
    Image.new("L", (5, 4), 255).save(tmp_path / "m.png")
    fixmap = load_fixmap(tmp_path / "m.png")
    assert fixmap.dtype == np.float32 and fixmap.shape == (4, 5)
    np.testing.assert_allclose(fixmap, 1.0)


def test_prepared_stimuli_resolve_from_the_json_folder(tmp_path):
    (tmp_path / "prepared").mkdir()
    stimulus = {"id": "i1", "file_name": "mit1003/ALLSTIMULI/i1.jpeg"}
    index = {"info": {"image_root": "../raw"}, "stimuli": [stimulus]}
    (tmp_path / "prepared" / "mit1003.json").write_text(json.dumps(index))
    prepared = PreparedStimuli.load(tmp_path / "prepared" / "mit1003.json")
    path = prepared.resolve(prepared.stimuli[0]["file_name"])
    assert path.resolve() == (tmp_path / "raw" / "mit1003" / "ALLSTIMULI" / "i1.jpeg").resolve()


@pytest.mark.parametrize(("content", "message"), [(None, "not found"), ("{", "not valid JSON"), ("[]", "needs")])
def test_prepared_stimuli_bad_files(tmp_path, content, message):
    path = tmp_path / "mit1003.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        PreparedStimuli.load(path)
