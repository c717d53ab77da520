"""Device choice: CUDA when present (``auto``), else CPU; an explicit ``cuda`` without a GPU is an error."""

from __future__ import annotations

import torch

from human_saliency.errors import ParamsError


def resolve_device(choice: str) -> torch.device:
    """The torch device for ``runtime.device`` (auto | cpu | cuda)."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ParamsError("runtime.device: 'cuda' was asked for but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(choice)
