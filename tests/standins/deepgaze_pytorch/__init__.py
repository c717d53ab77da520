"""Stand-in for ``deepgaze_pytorch`` at commit 874f12e (tests only; the real package is not on PyPI).

It keeps what human_saliency builds against: the module layout, the class names, each backbone constructor's own
download (Bitbucket, a GitHub release, ``torch.hub.load('pytorch/vision:v0.6.0', ...)``), ``DeepGazeIIE``'s
``pretrained`` flag loading ``deepgaze2e.pth`` through ``torch.utils.model_zoo``, and every state-dict key and shape
of that checkpoint (tests/test_predictors.py compares them with the real package's wherever it is installed). Its
forward pass is simpler than DeepGaze IIE's: the same inputs (0-255 pixels, a log-density centre bias) and output (a
B×1×H×W log density), computed from the backbones' used features.
"""

from .deepgaze2e import DeepGazeIIE

__all__ = ["DeepGazeIIE"]
