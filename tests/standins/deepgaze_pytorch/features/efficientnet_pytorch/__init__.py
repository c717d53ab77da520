from .model import EfficientNet

__all__ = ["EfficientNet"]
