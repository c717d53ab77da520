"""Training-data augmentations of the study's main experiment: selective erasing, inpainting, transformations.

``selection`` decides which images are augmented, ``erasing`` and ``inpainting`` (with ``dip``)
edit their pixels, and ``policy`` applies box-aware geometric and photometric transformations.
"""
