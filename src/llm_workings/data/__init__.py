"""Datasets: seeded toy classification sets for the backprop lab, packaged text corpora,
and seeded synthetic sequence tasks for small transformers."""

from .corpora import CORPORA, Corpus, load_corpus
from .tasks import ModularAddition, batches_from_text, induction_targets, modular_addition, repeated_tokens, sorting
from .toy import DATASETS, XOR_LABELS, XOR_POINTS, Dataset, make_dataset

__all__ = [
    "CORPORA",
    "DATASETS",
    "XOR_LABELS",
    "XOR_POINTS",
    "Corpus",
    "Dataset",
    "ModularAddition",
    "batches_from_text",
    "induction_targets",
    "load_corpus",
    "make_dataset",
    "modular_addition",
    "repeated_tokens",
    "sorting",
]
