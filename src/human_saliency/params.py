"""The one params schema: ``params.yaml`` is validated here on load, with errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from human_saliency.errors import ParamsError

DEFAULT_PARAMS = Path("params.yaml")

MD5 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]

# --- Choices from the registries -------------------------------------------------------------------------
# Each valid name comes from its registry, imported here only to check names: a registry change can make a
# params file invalid but cannot change a stage's outputs, so these look-ups are not stage deps (see
# tests/test_layout.py).


def _detectors() -> dict[str, Any]:
    from human_saliency.maps.detectors import DETECTORS

    return DETECTORS


def _trainable_detectors() -> list[str]:
    return [name for name, spec in _detectors().items() if spec.trainable_frozen is not None]


def _predictors() -> list[str]:
    from human_saliency.maps.predictors import PREDICTORS

    return list(PREDICTORS)


def _criteria() -> list[str]:
    from human_saliency.experiment.selection import CRITERIA

    return list(CRITERIA)


def _inpainting_methods() -> list[str]:
    from human_saliency.experiment.inpainting import METHODS

    return list(METHODS)


def _check_policy(policy: list[dict[str, Any]]) -> None:
    from human_saliency.experiment.policy import build_policy

    build_policy(policy)


def _one_of(value: str, choices: list[str], what: str) -> None:
    if value not in choices:
        raise ValueError(f"{what}: unknown {value!r}; known: {', '.join(choices)}")


def _not_dots(name: str) -> str:
    if name in (".", ".."):
        raise ValueError("must name a file, not a folder")
    return name


# One path component: no separator, and not "." or ".." (the cache folder or its parent).
FileName = Annotated[str, Field(pattern=r"^[^/\\]+$"), AfterValidator(_not_dots)]


class _Section(BaseModel):
    """Strict base: unknown keys and wrong types are errors, never silently coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


URL = Annotated[str, Field(pattern=r"^(https?|file)://")]


class SourceSpec(_Section):
    """One remote archive: where it lives (``mirrors``: other URLs of the same file, tried in order when ``url``
    fails), what it must hash to, and where it extracts."""

    url: URL
    mirrors: list[URL]
    filename: FileName
    size: Annotated[int, Field(ge=1)] | None
    md5: MD5 | None
    dest: Literal["voc", "human_masks", "mit1003"]

    @field_validator("filename")
    @classmethod
    def _archive_suffix(cls, filename: str) -> str:
        from human_saliency.io.archive import ARCHIVE_SUFFIXES  # the extractor's list is the one list

        if not filename.lower().endswith(ARCHIVE_SUFFIXES):
            raise ValueError(f"must end with one of {', '.join(ARCHIVE_SUFFIXES)}, the archive types extracted")
        return filename


class RemoteParams(_Section):
    """The real datasets of the study (paper profile)."""

    cache_dir: str
    timeout_s: float = Field(gt=0, allow_inf_nan=False)
    min_bytes_per_s: float = Field(ge=0, allow_inf_nan=False)
    retries: int = Field(ge=0, le=20)
    max_bytes: int = Field(ge=1)
    max_ratio: float = Field(ge=1, allow_inf_nan=False)
    voc2012: SourceSpec
    human_masks: SourceSpec
    mit1003_stimuli: SourceSpec
    mit1003_fixations: SourceSpec

    def sources(self) -> dict[str, SourceSpec]:
        """The sources by name, in download order."""
        return {
            "voc2012": self.voc2012,
            "human_masks": self.human_masks,
            "mit1003_stimuli": self.mit1003_stimuli,
            "mit1003_fixations": self.mit1003_fixations,
        }

    @model_validator(mode="after")
    def _check(self) -> RemoteParams:
        seen: dict[str, str] = {}
        for name, spec in self.sources().items():
            if spec.filename in seen:
                raise ValueError(f"{seen[spec.filename]} and {name} share the filename {spec.filename!r}")
            seen[spec.filename] = name
        return self


class EmbeddedParams(_Section):
    """The offline generator that writes the real datasets' layouts (embedded default)."""

    seed: int = Field(ge=0)
    n_images: int = Field(ge=10, le=20000)
    test_fraction: float = Field(gt=0, lt=1)
    n_mit_images: int = Field(ge=2, le=5000)
    min_size: int = Field(ge=32, le=256)
    max_size: int = Field(ge=32, le=256)
    max_objects: int = Field(ge=1, le=8)
    classes: list[str] = Field(min_length=2, max_length=20)
    object_opacity: float = Field(gt=0, le=1)
    spurious: bool
    cue_correlation: float = Field(ge=0, le=1)
    cue_size: float = Field(gt=0, le=0.5)
    shifted_cue: Literal["other", "random", "none"]

    @model_validator(mode="after")
    def _check(self) -> EmbeddedParams:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be unique, got {self.classes}")
        return self


class DataParams(_Section):
    """Where the raw data come from: the embedded generator or the real archives."""

    source: Literal["embedded", "remote"]
    embedded: EmbeddedParams
    remote: RemoteParams


class PrepareParams(_Section):
    """How raw data become the prepared splits."""

    on_bad_input: Literal["skip", "error"]
    min_box_size: int = Field(ge=1, le=64)
    max_dropped_fraction: float = Field(ge=0, le=1)
    mask_size_mismatch: Literal["resize", "drop"]


class RuntimeParams(_Section):
    """Where and how computations run. None changes results beyond float noise, except ``nproc`` for training:
    each of its processes takes ``train.batch_size`` images a step (saliency results are the same bytes).

    ``train_parallel``: training runs (one per seed) at once, each in its own process, when ``nproc`` is 1;
    it changes no result, because each run uses ``model_threads`` torch threads whatever the pool size.
    ``model_threads``: torch threads of each training run and of the stages that map with the trained models
    (base_saliency, evaluate); the thread count can change float round-off, so it is among their params. Small
    models gain nothing from more threads, and on a shared CPU more threads than free cores stall."""

    device: Literal["auto", "cpu", "cuda"]
    weights_cache: str
    num_workers: int = Field(ge=0, le=64)
    amp: bool
    nproc: int = Field(ge=1, le=64)
    train_parallel: int = Field(ge=1, le=64)
    model_threads: int = Field(ge=1, le=256)


class WeightsFile(_Section):
    """A downloadable weights or data file, pinned by its SHA-256 (null: none published; its first download is
    recorded in downloads.lock, which later downloads must match)."""

    url: URL
    filename: FileName
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")] | None


class StudyParams(_Section):
    """The saliency study: which detectors, which weights, at which working resolution."""

    detectors: list[str] = Field(min_length=1)
    weights: Literal["coco", "random"]
    seed: int = Field(ge=0)
    size: int = Field(ge=32, le=2048)
    detector_min_size: Annotated[int, Field(ge=32, le=2048)] | None
    batch_size: int = Field(ge=1, le=512)
    score_threshold: float = Field(ge=0, le=1)
    max_detections: int = Field(ge=1, le=300)
    proposals: Annotated[int, Field(ge=1, le=10000)] | None
    iou_percentile: float = Field(gt=0, lt=100)
    mask_threshold: float = Field(gt=0, le=1)
    bootstrap: int = Field(ge=0, le=100000)
    overlays: int = Field(ge=0, le=100)
    trust_unverified_pickles: bool

    @model_validator(mode="after")
    def _check(self) -> StudyParams:
        unknown = [name for name in self.detectors if name not in _detectors()]
        if unknown:
            raise ValueError(f"detectors: unknown {unknown}; known: {', '.join(_detectors())}")
        if len(set(self.detectors)) != len(self.detectors):
            raise ValueError(f"detectors: listed twice in {self.detectors}")
        return self


class FixationsParams(_Section):
    """The predictor of human eye fixations that detector maps are compared with."""

    predictor: str
    batch_size: int = Field(ge=1, le=512)
    centerbias: WeightsFile
    checkpoint: WeightsFile

    @model_validator(mode="after")
    def _check(self) -> FixationsParams:
        _one_of(self.predictor, _predictors(), "predictor")
        return self


class TrainParams(_Section):
    """Fine-tuning Faster R-CNN, with the same schedule for every training set; every arm is trained once per
    seed in ``seeds`` (the first seed's original model is the base detector and the study's "trained here" row)."""

    detector: str
    init: Literal["random", "coco"]
    optimizer: Literal["sgd", "adam"]
    epochs: int = Field(ge=1, le=1000)
    batch_size: int = Field(ge=1, le=512)
    lr: float = Field(gt=0, le=10)
    momentum: float = Field(ge=0, lt=1)
    weight_decay: float = Field(ge=0, le=1)
    warmup_iters: int = Field(ge=0, le=100000)
    rois_per_image: int = Field(ge=1, le=4096)
    hflip: float = Field(ge=0, le=1)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> TrainParams:
        if self.detector not in _trainable_detectors():
            trainable = ", ".join(_trainable_detectors())
            raise ValueError(f"detector: {self.detector!r} cannot be trained here; trainable: {trainable}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: listed twice in {self.seeds}")
        return self


class AugParams(_Section):
    """The augmentation arms: which images are selected, how much is erased, the transformation policy."""

    base: Literal["original", "coco"]
    criterion: str
    threshold: float = Field(ge=0, le=1)
    erase_fraction: float = Field(gt=0, lt=1)
    fill: int = Field(ge=0, le=255)
    seed: int = Field(ge=0)
    policy: list[dict[str, Any]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> AugParams:
        _one_of(self.criterion, _criteria(), "criterion")
        try:
            _check_policy(self.policy)
        except ValueError as exc:
            raise ValueError(f"policy: {exc}") from None
        return self


class InpaintParams(_Section):
    """How the selective-inpainting arm fills erased pixels."""

    method: str
    radius: float = Field(gt=0, le=50)
    iterations: int = Field(ge=1, le=100000)
    lr: float = Field(gt=0, le=1)
    batch_size: int = Field(ge=1, le=512)

    @model_validator(mode="after")
    def _check(self) -> InpaintParams:
        _one_of(self.method, _inpainting_methods(), "method")
        return self

    def options(self, *, seed: int, device: str) -> dict[str, Any]:
        """The keyword arguments of the chosen method."""
        if self.method == "dip":
            return {
                "method": "dip",
                "iterations": self.iterations,
                "lr": self.lr,
                "seed": seed,
                "device": device,
                "batch_size": self.batch_size,
            }
        return {"method": self.method, "radius": self.radius}


class Params(_Section):
    """The whole ``params.yaml``."""

    data: DataParams
    prepare: PrepareParams
    runtime: RuntimeParams
    study: StudyParams
    fixations: FixationsParams
    train: TrainParams
    aug: AugParams
    inpaint: InpaintParams

    @model_validator(mode="after")
    def _check(self) -> Params:
        """Checks across sections: COCO weights need VOC's classes, and a detector that has them."""
        coco_uses = {
            "study.weights": self.study.weights == "coco",
            "train.init": self.train.init == "coco",
            "aug.base": self.aug.base == "coco",
        }
        for key, uses_coco in coco_uses.items():
            if uses_coco and self.data.source == "embedded":
                raise ValueError(
                    f"{key}: 'coco' weights predict VOC's 20 classes, but data.source 'embedded' has its own "
                    f"classes; use data.source: remote, or random init / the trained original model"
                )
        needs_coco = set(self.study.detectors) if self.study.weights == "coco" else set()
        if self.train.init == "coco" or self.aug.base == "coco":
            needs_coco.add(self.train.detector)
        lacking = sorted(name for name in needs_coco if not _detectors()[name].coco_weights)
        if lacking:
            raise ValueError(f"study.weights / train.init / aug.base: no COCO weights exist for {lacking}")
        return self


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    """One line for one pydantic error: the dotted key, what was expected, what was given."""
    if not error["loc"]:  # a check across sections: its message names the keys
        return error["msg"].removeprefix("Value error, ")
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key{_known_keys_hint(error['loc'], model)}"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    if isinstance(error["input"], dict):  # a whole-section check: its message starts with the field, if one
        message = error["msg"].removeprefix("Value error, ")
        field, _, rest = message.partition(": ")
        return f"{key}.{field}: {rest}" if field in error["input"] else f"{key}: {message}"
    return f"{key}: {error['msg'].removeprefix('Value error, ')} (got {error['input']!r})"


def _known_keys_hint(loc: tuple, model: type[BaseModel]) -> str:
    """List the valid keys of the section that holds an unknown key."""
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return ""
        current = field.annotation
    fields = getattr(current, "model_fields", None)
    return f"; valid keys: {', '.join(fields)}" if fields else ""


def parse_params(raw: Any, *, source: str = "params") -> Params:
    """Validate a params mapping, raising ParamsError that names the first bad key."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(f"{source}: {_describe(exc.errors()[0], Params)}") from None


def load_params(path: str | os.PathLike = DEFAULT_PARAMS) -> Params:
    """Read and validate a params YAML file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_params(raw, source=str(path))
