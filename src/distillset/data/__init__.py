"""Datasets: the registry, standard-format readers, data roots, and device-resident real data."""

from .real import RealData, normalize_pixels, real_data
from .registry import DATASETS, ImageDataset, dataset_names, get_spec, load_dataset

__all__ = ["DATASETS", "ImageDataset", "RealData", "dataset_names", "get_spec", "load_dataset", "normalize_pixels", "real_data"]
