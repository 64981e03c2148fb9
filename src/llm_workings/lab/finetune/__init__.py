"""The "Fine-tuning" page: fine-tune a bundled model on another corpus as a job (lab/jobs/finetuning.py),
watch learning and forgetting, then compare generations, ΔW's spectra and a task vector's λ. Routes in routes.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/fine-tuning", "fine-tuning.html", router)

__all__ = ["PAGE"]
