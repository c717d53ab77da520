"""The main experiment: selection, erasing, inpainting (incl. Deep Image Prior), the transformation policy,
the augmented sets, training and evaluation."""
