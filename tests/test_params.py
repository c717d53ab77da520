"""The params schema: both profiles validate, and every kind of bad value names its key."""

import copy
from pathlib import Path

import pytest
import yaml

from human_saliency.errors import ParamsError
from human_saliency.params import load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]
PROFILES = [ROOT / "params.yaml", ROOT / "configs" / "paper.yaml"]


def _keys(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix}
    return set().union(*(_keys(v, f"{prefix}.{k}" if prefix else k) for k, v in tree.items()))


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_profile_validates(path):
    load_params(path)


def test_profiles_set_the_same_keys():
    # A profile switch is a file copy: a key missing from one profile would silently take its default.
    default, paper = (_keys(yaml.safe_load(p.read_text())) for p in PROFILES)
    assert default == paper


def test_paper_profile_uses_the_real_sources():
    params = load_params(PROFILES[1])
    assert params.data.source == "remote"
    assert params.data.remote.voc2012.md5 == "6cd6e144f989b92b3379bac3b3de84fd"
    assert params.data.remote.voc2012.size == 1_999_639_040


@pytest.fixture
def raw():
    return yaml.safe_load(PROFILES[0].read_text())


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("data", "embedded", "bogus"), 1, "data.embedded.bogus: unknown key; valid keys: seed"),
        (("data", "embedded", "n_images"), "300", "data.embedded.n_images: Input should be a valid integer"),
        (("data", "embedded", "n_images"), 3, "data.embedded.n_images: Input should be greater than or equal to 10"),
        (("data", "source"), "web", "data.source: Input should be 'embedded' or 'remote'"),
        (("prepare", "on_bad_input"), "ignore", "prepare.on_bad_input: Input should be 'skip' or 'error'"),
        (("data", "embedded", "min_size"), 250, "data.embedded: min_size (250) must not exceed max_size (192)"),
        (("data", "remote", "voc2012", "md5"), "xyz", "data.remote.voc2012.md5: String should match pattern"),
        (("train", "detector"), "retinanet_r50", "train.detector: 'retinanet_r50' cannot be trained here; trainable:"),
        (("study", "detectors"), ["yolov9"], "study.detectors: unknown ['yolov9']; known: yolov5,"),
        (("fixations", "predictor"), "gbvs", "fixations.predictor: unknown 'gbvs'; known: deepgaze_iie,"),
        (("aug", "criterion"), "cc", "aug.criterion: unknown 'cc'; known: iou, mae"),
        (("inpaint", "method"), "lama", "inpaint.method: unknown 'lama'; known:"),
        (("study", "weights"), "coco", "study.weights: 'coco' weights predict VOC's 20 classes, but data.source"),
        (("train", "init"), "coco", "train.init: 'coco' weights predict VOC's 20 classes"),
        (("aug", "base"), "coco", "aug.base: 'coco' weights predict VOC's 20 classes"),
        # Values that passed validation and then crashed a stage (issue 13, item 11):
        (("data", "remote", "voc2012", "filename"), "..", "data.remote.voc2012.filename: must name a file"),
        (("data", "remote", "mit1003_stimuli", "filename"), ".", "data.remote.mit1003_stimuli.filename: must name a"),
        (("fixations", "centerbias", "filename"), "..", "fixations.centerbias.filename: must name a file"),
        (
            ("data", "remote", "voc2012", "filename"),
            "VOCtrainval_11-May-2012.rar",  # found only after a 2 GB download
            "data.remote.voc2012.filename: must end with one of .tar, .tar.gz, .tgz, .tar.bz2, .zip",
        ),
        (("data", "remote", "timeout_s"), float("inf"), "data.remote.timeout_s: Input should be a finite number"),
        (("data", "remote", "min_bytes_per_s"), float("nan"), "data.remote.min_bytes_per_s: Input should be a finite"),
        (("data", "remote", "max_ratio"), float("inf"), "data.remote.max_ratio: Input should be a finite number"),
        (("data", "remote", "max_bytes"), 0, "data.remote.max_bytes: Input should be greater than or equal to 1"),
        (
            ("data", "remote", "human_masks", "filename"),
            "ALLSTIMULI.zip",
            "data.remote: human_masks and mit1003_stimuli share the filename 'ALLSTIMULI.zip'",
        ),
        (("prepare", "max_dropped_fraction"), 1.5, "prepare.max_dropped_fraction: Input should be less than or equal"),
        (("data", "embedded", "cue_correlation"), 1.5, "data.embedded.cue_correlation: Input should be less than"),
        (("data", "embedded", "object_opacity"), 0.0, "data.embedded.object_opacity: Input should be greater than 0"),
        (("data", "embedded", "shifted_cue"), "flip", "data.embedded.shifted_cue: Input should be 'other', 'random'"),
        (("train", "optimizer"), "rmsprop", "train.optimizer: Input should be 'sgd' or 'adam'"),
    ],
)
def test_bad_value_names_its_key(raw, path, value, expected):
    bad = copy.deepcopy(raw)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ParamsError) as info:
        parse_params(bad, source="params.yaml")
    message = str(info.value)
    assert message.startswith("params.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_a_key_has_no_silent_default(raw):
    """Every key must be set in the profile: a schema default could differ from what a profile means."""
    del raw["train"]["lr"]
    with pytest.raises(ParamsError, match=r"train\.lr: required key is missing"):
        parse_params(raw)


def test_missing_section_is_named(raw):
    del raw["data"]["remote"]
    with pytest.raises(ParamsError, match=r"data\.remote: required key is missing"):
        parse_params(raw)


def test_unreadable_yaml_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params\.yaml: not valid YAML"):
        load_params(path)
