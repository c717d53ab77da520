"""The one params schema: ``params.yaml`` is validated here on load, with errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from human_saliency.errors import ParamsError

DEFAULT_PARAMS = Path("params.yaml")

MD5 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class _Section(BaseModel):
    """Strict base: unknown keys and wrong types are errors, never silently coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SourceSpec(_Section):
    """One remote archive: where it lives, what it must hash to, and where it extracts."""

    url: str = Field(pattern=r"^(https?|file)://")
    filename: str = Field(pattern=r"^[^/\\]+$")
    size: Annotated[int, Field(ge=1)] | None = None
    md5: MD5 | None = None
    dest: Literal["voc", "human_masks", "mit1003"]


class RemoteParams(_Section):
    """The real datasets of the study (paper profile)."""

    cache_dir: str = ".cache/downloads"
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0, le=20)
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


class EmbeddedParams(_Section):
    """The offline generator that writes the real datasets' layouts (embedded default)."""

    seed: int = Field(default=0, ge=0)
    n_images: int = Field(default=300, ge=10, le=20000)
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    n_mit_images: int = Field(default=60, ge=2, le=5000)
    min_size: int = Field(default=128, ge=32, le=256)
    max_size: int = Field(default=192, ge=32, le=256)
    max_objects: int = Field(default=3, ge=1, le=8)
    classes: list[str] = Field(default=["disc", "square", "triangle", "cross", "ring"], min_length=2, max_length=20)
    object_opacity: float = Field(default=1.0, gt=0, le=1)
    spurious: bool = False
    cue_correlation: float = Field(default=0.95, ge=0, le=1)
    cue_size: float = Field(default=0.3, gt=0, le=0.5)
    shifted_cue: Literal["other", "random", "none"] = "other"

    @model_validator(mode="after")
    def _check(self) -> EmbeddedParams:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be unique, got {self.classes}")
        return self


class DataParams(_Section):
    """Where the raw data come from: the embedded generator or the real archives."""

    source: Literal["embedded", "remote"] = "embedded"
    embedded: EmbeddedParams = EmbeddedParams()
    remote: RemoteParams


class PrepareParams(_Section):
    """How raw data become the prepared splits."""

    on_bad_input: Literal["skip", "error"] = "skip"
    min_box_size: int = Field(default=1, ge=1, le=64)


class RuntimeParams(_Section):
    """Where and how computations run. None changes results beyond float noise, except ``nproc`` for training:
    each of its processes takes ``train.batch_size`` images a step (saliency results are the same bytes)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    weights_cache: str = ".cache/weights"
    num_workers: int = Field(default=0, ge=0, le=64)
    amp: bool = False
    nproc: int = Field(default=1, ge=1, le=64)


class WeightsFile(_Section):
    """A downloadable weights or data file, pinned by its SHA-256 (null: unpinned, warned about)."""

    url: str = Field(pattern=r"^(https?|file)://")
    filename: str = Field(pattern=r"^[^/\\]+$")
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")] | None = None


class StudyParams(_Section):
    """The saliency study: which detectors, which weights, at which working resolution."""

    detectors: list[str] = Field(min_length=1)
    weights: Literal["coco", "random"] = "random"
    seed: int = Field(default=0, ge=0)
    size: int = Field(default=512, ge=32, le=2048)
    detector_min_size: Annotated[int, Field(ge=32, le=2048)] | None = None
    batch_size: int = Field(default=8, ge=1, le=512)
    score_threshold: float = Field(default=0.05, ge=0, le=1)
    iou_percentile: float = Field(default=90.0, gt=0, lt=100)
    mask_threshold: float = Field(default=0.5, gt=0, le=1)
    bootstrap: int = Field(default=1000, ge=0, le=100000)
    overlays: int = Field(default=4, ge=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> StudyParams:
        from human_saliency.maps.detectors import DETECTORS  # the registry is the one list of names

        unknown = [name for name in self.detectors if name not in DETECTORS]
        if unknown:
            raise ValueError(f"detectors: unknown {unknown}; known: {', '.join(DETECTORS)}")
        if len(set(self.detectors)) != len(self.detectors):
            raise ValueError(f"detectors: listed twice in {self.detectors}")
        return self


class FixationsParams(_Section):
    """The predictor of human eye fixations that detector maps are compared with."""

    predictor: str = "spectral_residual"
    batch_size: int = Field(default=8, ge=1, le=512)
    centerbias: WeightsFile

    @model_validator(mode="after")
    def _check(self) -> FixationsParams:
        from human_saliency.maps.predictors import PREDICTORS  # the registry is the one list of names

        if self.predictor not in PREDICTORS:
            raise ValueError(f"predictor: unknown {self.predictor!r}; known: {', '.join(PREDICTORS)}")
        return self


class TrainParams(_Section):
    """Fine-tuning Faster R-CNN, with the same schedule for every training set."""

    detector: str = "fasterrcnn_mobilenet"
    init: Literal["random", "coco"] = "random"
    optimizer: Literal["sgd", "adam"] = "sgd"
    epochs: int = Field(default=12, ge=1, le=1000)
    batch_size: int = Field(default=8, ge=1, le=512)
    lr: float = Field(default=0.02, gt=0, le=10)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=1e-4, ge=0, le=1)
    warmup_iters: int = Field(default=50, ge=0, le=100000)
    rois_per_image: int = Field(default=512, ge=1, le=4096)
    hflip: float = Field(default=0.5, ge=0, le=1)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> TrainParams:
        from human_saliency.maps.detectors import DETECTORS

        if self.detector not in DETECTORS or DETECTORS[self.detector].family != "torchvision":
            trainable = [name for name, spec in DETECTORS.items() if spec.family == "torchvision"]
            raise ValueError(
                f"detector: {self.detector!r} cannot be trained here; choose one of {', '.join(trainable)}"
            )
        return self


class AugParams(_Section):
    """The augmentation arms: which images are selected, how much is erased, the transformation policy."""

    base: Literal["original", "coco"] = "original"
    criterion: Literal["iou", "mae"] = "iou"
    threshold: float = Field(default=0.1, ge=0, le=1)
    erase_fraction: float = Field(default=0.025, gt=0, lt=1)
    fill: int = Field(default=0, ge=0, le=255)
    seed: int = Field(default=0, ge=0)
    policy: list[dict[str, Any]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> AugParams:
        from human_saliency.experiment.policy import build_policy

        try:
            build_policy(self.policy)
        except ValueError as exc:
            raise ValueError(f"policy: {exc}") from None
        return self


class InpaintParams(_Section):
    """How the selective-inpainting arm fills erased pixels."""

    method: Literal["dip", "telea", "ns"] = "telea"
    radius: float = Field(default=3.0, gt=0, le=50)
    iterations: int = Field(default=4001, ge=1, le=100000)
    lr: float = Field(default=0.001, gt=0, le=1)
    batch_size: int = Field(default=8, ge=1, le=512)

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
    prepare: PrepareParams = PrepareParams()
    runtime: RuntimeParams = RuntimeParams()
    study: StudyParams
    fixations: FixationsParams
    train: TrainParams
    aug: AugParams
    inpaint: InpaintParams


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    """One line for one pydantic error: the dotted key, what was expected, what was given."""
    key = ".".join(str(part) for part in error["loc"]) or "<root>"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key{_known_keys_hint(error['loc'], model)}"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    if isinstance(error["input"], dict):  # a whole-section check: the message names the values
        return f"{key}: {error['msg'].removeprefix('Value error, ')}"
    return f"{key}: {error['msg']} (got {error['input']!r})"


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
