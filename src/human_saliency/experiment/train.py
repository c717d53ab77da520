"""Train a torchvision Faster R-CNN on a prepared split: SGD or Adam, warmup + cosine decay, resumable per epoch;
one seed's whole run (:func:`train_run`) as a picklable job for the training stage's pool of processes."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from tqdm import tqdm

from human_saliency.errors import DataError, HumanSaliencyError
from human_saliency.experiment.training_data import DetectionDataset, collate_fn
from human_saliency.io.files import atomic_file
from human_saliency.io.weights import load_tensors
from human_saliency.maps.detectors import DETECTORS, build_detector
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime import distributed

log = logging.getLogger(__name__)

WARMUP_FACTOR = 0.001  # the first iteration's lr = lr × this (torchvision's detection reference)


def build_model(
    detector: str, *, init: str, num_classes: int, size: int, cache_dir: Path, rois_per_image: int = 512
) -> nn.Module:
    """A Faster R-CNN of the registry in train mode, on the CPU, for ``num_classes`` classes + background.

    ``init="random"``: from scratch, offline (seed torch's RNG first for a reproducible model).
    ``init="coco"``: the COCO-pretrained model (fetched once into ``cache_dir``) with a fresh
    ``FastRCNNPredictor`` head, torchvision's fine-tuning recipe, and its early backbone frozen.
    The model's internal resize is set to ``size``: training happens at the working resolution.
    ``rois_per_image``: proposals sampled per image for the box-head loss (torchvision: 512,
    py-faster-rcnn: 128); the box head's cost on a CPU grows with it, and it changes no weights' shape.
    """
    if init == "random":
        model = DETECTORS[detector].builder(num_classes + 1)
    else:
        # build_detector maps COCO's classes to VOC's 20; that head is replaced anyway, so any K works.
        with build_detector(detector, weights="coco", num_classes=20, cache_dir=cache_dir) as pretrained:
            model = pretrained.model
        in_features = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes + 1)
        for name, param in model.backbone.body.named_parameters():
            if name.startswith(DETECTORS[detector].trainable_frozen):
                param.requires_grad_(False)
    model.transform.min_size = (size,)
    model.transform.max_size = size
    model.roi_heads.fg_bg_sampler.batch_size_per_image = rois_per_image
    return model.train()


def lr_factor(iteration: int, *, total_iters: int, warmup_iters: int) -> float:
    """The lr multiplier at ``iteration``: linear warmup from WARMUP_FACTOR to 1, then cosine decay to 0.

    Cosine rather than step decay: no milestones to re-tune when the number of epochs changes.
    """
    if iteration < warmup_iters:
        return WARMUP_FACTOR + (1 - WARMUP_FACTOR) * iteration / warmup_iters
    progress = (iteration - warmup_iters) / max(1, total_iters - warmup_iters)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Iterable,
    device: torch.device,
    epoch: int,
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
    max_grad_norm: float = 10.0,
    log_every: int = 10,
) -> dict[str, float]:
    """One pass over ``loader``; returns the mean of each loss and of their sum (``loss``).

    ``scheduler`` steps after every iteration (the warmup lives in it). Gradients are clipped to
    ``max_grad_norm``. With an enabled ``scaler`` the forward pass runs under autocast (CUDA AMP).
    A non-finite loss stops training with an error naming the epoch and iteration.
    """
    model.train()
    amp = scaler is not None and scaler.is_enabled()
    sums: dict[str, float] = defaultdict(float)
    n = 0
    progress = tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False)
    for iteration, (images, targets) in enumerate(progress):
        images = [image.to(device, non_blocking=True) for image in images]
        targets = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]
        with torch.autocast(device.type, enabled=amp):
            losses = model(images, targets)
        loss = sum(losses.values())
        values = {"loss": loss.item(), **{name: value.item() for name, value in losses.items()}}
        if not math.isfinite(values["loss"]):
            raise HumanSaliencyError(
                f"training diverged: loss is {values['loss']} at epoch {epoch}, iteration {iteration} "
                f"({', '.join(f'{k}={v:.4g}' for k, v in values.items())}); lower the learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        if amp:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        for name, value in values.items():
            sums[name] += value
        n += 1
        if iteration % log_every == 0:
            progress.set_postfix(loss=f"{values['loss']:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    if n == 0:
        raise DataError(f"epoch {epoch}: the data loader yielded no batches")
    means = {name: total / n for name, total in sums.items()}
    log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4f}" for k, v in means.items()))
    return means


def fit(
    model: nn.Module,
    train_set: Dataset,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    warmup_iters: int,
    seed: int,
    device: torch.device | str,
    num_workers: int,
    checkpoint_path: Path,
    fingerprint: str,
    live: Any = None,
    amp: bool = False,
    optimizer: str = "sgd",
) -> dict[str, Any]:
    """Train ``model`` on ``train_set`` (a DetectionDataset) for ``epochs`` epochs; returns the loss history.

    ``optimizer``: "sgd" (with ``momentum``; the study's) or "adam" (``momentum`` unused; L2 weight decay),
    with ``warmup_iters`` of linear warmup, then cosine decay to 0 at the last iteration. The data
    order and the augmentation/sampling RNG follow from ``seed``. After every epoch the full state
    (model, optimizer, scheduler, scaler, RNG states, history) is saved atomically to
    ``checkpoint_path``; a later call with the same ``fingerprint`` (which must cover everything that
    shapes the run: params, data, model) resumes after the last saved epoch and ends with the weights
    an uninterrupted run gives. ``live``: a dvclive ``Live`` (``resume=True`` keeps its earlier steps)
    that gets each epoch's losses and lr. ``amp`` takes effect on CUDA only.

    Under torchrun (``distributed.init_from_env`` called first) the model is wrapped in
    DistributedDataParallel and a DistributedSampler gives each process its part of every epoch. Each
    process takes ``batch_size`` images, so one step sees world_size × batch_size images; ``lr`` is
    used as given, NOT rescaled for that larger batch. The logged losses are averaged over processes;
    only rank 0 writes the checkpoint and logs to ``live`` (the others wait for it). The fingerprint
    must then cover the world size too, since it shapes the run.

    Returns ``{"start_epoch": first epoch run by this call, "history": [{epoch, lr, loss, ...}, ...]}``.
    """
    if len(train_set) == 0:
        raise DataError("the training set has no images")
    device = torch.device(device)
    if amp and device.type != "cuda":
        log.warning("amp: mixed precision is for CUDA only; training in float32 on %s", device)
    model.to(device)
    rank, world = distributed.rank(), distributed.world_size()
    generator = torch.Generator().manual_seed(seed)
    # Flips in the main process, RPN/ROI sampling, worker seeds; offset by rank so that the processes
    # do not all draw the same flips and samples.
    torch.manual_seed(seed + rank)
    sampler = None
    if world > 1:
        sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    loader = DataLoader(
        train_set,
        batch_size=batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=device.type == "cuda",
    )
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        # fused: one kernel for all parameters; the per-tensor loop took ~10 % of a compact model's CPU step.
        optim: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    else:
        optim = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    total_iters = epochs * len(loader)
    schedule = partial(lr_factor, total_iters=total_iters, warmup_iters=min(warmup_iters, total_iters))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optim, schedule)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")
    # DDP averages the gradients over processes in backward; ``model`` stays the bare module, whose
    # state dict (without DDP's "module." prefix) is what gets saved.
    trained = DistributedDataParallel(model) if world > 1 else model

    start_epoch, history = 0, []
    state = _resumable_state(checkpoint_path, fingerprint)
    if state is not None:
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_states(state["rng"][rank], generator)
        start_epoch, history = state["epoch"], state["history"]
        log.info("%s: resuming after epoch %d of %d", checkpoint_path, start_epoch, epochs)

    for epoch in range(start_epoch, epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        losses = train_one_epoch(trained, optim, loader, device, epoch, scheduler=scheduler, scaler=scaler)
        # Every process runs the same number of batches (the sampler pads), so the mean of the means is
        # the mean over all batches.
        every = distributed.gather_objects(losses)
        losses = {name: sum(ranked[name] for ranked in every) / len(every) for name in losses}
        history.append({"epoch": epoch, "lr": scheduler.get_last_lr()[0], **losses})
        rng = distributed.gather_objects(_rng_states(generator))  # one entry per rank
        if distributed.is_main():
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": optim.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch + 1,
                "fingerprint": fingerprint,
                "rng": rng,
                "history": history,
            }
            with atomic_file(checkpoint_path) as tmp:
                torch.save(checkpoint, tmp)
            if live is not None:
                live.step = epoch  # explicit, so a resumed run continues at the right step
                for name, value in history[-1].items():
                    if name != "epoch":
                        live.log_metric(f"train/{name}", value)
                live.next_step()
        distributed.barrier()
    return {"start_epoch": start_epoch, "history": history}


def save_model(model: nn.Module, path: Path, *, meta: dict[str, Any]) -> None:
    """Write the trained model atomically as ``{"model": state dict, "meta": meta + its resize}`` (CPU tensors).

    It reloads with ``build_detector(<name>, weights=str(path), num_classes=K)``, which applies the stored
    ``resize`` (the model's internal min/max size): evaluated at the scale it was trained at. ``meta`` must
    hold plain values (str, numbers, lists, dicts) so that ``weights_only`` loading accepts it.
    """
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    resize = {"min_size": list(model.transform.min_size), "max_size": int(model.transform.max_size)}
    with atomic_file(path) as tmp:
        torch.save({"model": state, "meta": {**meta, "resize": resize}}, tmp)


def _resumable_state(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it is this run's (same fingerprint and process count), else None (logged why)."""
    if not Path(path).exists():
        return None
    try:
        state = load_tensors(path)
    except DataError as exc:
        log.warning("%s; starting afresh", exc)
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        found = state.get("fingerprint") if isinstance(state, dict) else None
        log.info("%s: written for another run (fingerprint %s, not %s); starting afresh", path, found, fingerprint)
        return None
    if not isinstance(state.get("rng"), list) or len(state["rng"]) != distributed.world_size():
        log.info("%s: holds no RNG states for %d process(es); starting afresh", path, distributed.world_size())
        return None
    return state


def _rng_states(generator: torch.Generator) -> dict[str, Any]:
    """The RNG states that decide what comes next: data order/worker seeds, and torch's global RNG."""
    states = {"loader": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any], generator: torch.Generator) -> None:
    generator.set_state(states["loader"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@dataclass(frozen=True)
class TrainRun:
    """One seed's training run, as a plain picklable job: the model, the training set, the schedule, and where
    its checkpoint and model go. ``fingerprint`` must cover everything that shapes the run (:func:`fit`)."""

    detector: str
    init: str
    train_set: Path  # a prepared split's COCO JSON
    size: int
    cache_dir: Path
    rois_per_image: int
    hflip: float
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    warmup_iters: int
    optimizer: str
    seed: int
    device: str
    num_workers: int
    amp: bool
    checkpoint_path: Path
    fingerprint: str
    model_path: Path
    meta: dict[str, Any] = field(default_factory=dict)


def train_run(run: TrainRun) -> list[dict[str, float]]:
    """Train one seed from scratch (or resume its checkpoint), save the model (main process), drop the checkpoint;
    return the loss history. The seed fixes the initial weights (torch's RNG when the model is built), the data
    order and the sampling (:func:`fit`): seed k of every arm starts from the same weights."""
    split = PreparedSplit.load(run.train_set)
    torch.manual_seed(run.seed)
    with distributed.main_first():  # one process downloads the weights
        model = build_model(
            run.detector,
            init=run.init,
            num_classes=len(split.category_names),
            size=run.size,
            cache_dir=run.cache_dir,
            rois_per_image=run.rois_per_image,
        )
    result = fit(
        model,
        DetectionDataset(split, run.size, hflip=run.hflip),
        epochs=run.epochs,
        batch_size=run.batch_size,
        lr=run.lr,
        momentum=run.momentum,
        weight_decay=run.weight_decay,
        warmup_iters=run.warmup_iters,
        optimizer=run.optimizer,
        seed=run.seed,
        device=run.device,
        num_workers=run.num_workers,
        amp=run.amp,
        checkpoint_path=run.checkpoint_path,
        fingerprint=run.fingerprint,
    )
    if distributed.is_main():
        save_model(model, run.model_path, meta={**run.meta, "categories": split.category_names, "seed": run.seed})
        run.checkpoint_path.unlink(missing_ok=True)
    distributed.barrier()
    return result["history"]
