"""Maps: the detector registry, EigenCAM, detector saliency and predicted fixations."""
