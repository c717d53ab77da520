"""Human-centred saliency of object detectors: a reproducible DVC pipeline."""

__version__ = "0.1.0"
