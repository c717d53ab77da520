"""Human-centred saliency of object detectors: a reproducible DVC pipeline."""
