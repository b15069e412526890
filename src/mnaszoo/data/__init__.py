"""Inputs and outputs around a model: image decoding, the preprocessing transform built from each
weight"s recipe, and class labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .images import load_image as load_image, load_images as load_images
    from .scan import (
        ClassFolders as ClassFolders,
        scan_class_folders as scan_class_folders,
        scan_files as scan_files,
    )
    from .transforms import ImageTransform as ImageTransform, make_transform as make_transform

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".images": (
            "load_image",
            "load_images",
        ),
        ".scan": (
            "ClassFolders",
            "scan_class_folders",
            "scan_files",
        ),
        ".transforms": (
            "ImageTransform",
            "make_transform",
        ),
    },
)
