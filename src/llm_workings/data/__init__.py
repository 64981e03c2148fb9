"""Datasets: seeded toy classification sets for the backprop lab."""

from .toy import DATASETS, XOR_LABELS, XOR_POINTS, Dataset, make_dataset

__all__ = ["DATASETS", "XOR_LABELS", "XOR_POINTS", "Dataset", "make_dataset"]
