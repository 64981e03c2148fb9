"""What `llmw lab` was started with: one object the server, the model cache and the job queue read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LabConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    models: tuple[str, ...] = ()  # --model PATH_OR_NAME, repeatable: HF directories, our saved models, hub names
    runs_dir: Path = field(default_factory=lambda: Path("runs"))  # where `llmw train` writes its runs
    model_memory_mb: int = 2048  # the loaded-model cache's budget; the least recently used model goes first
    max_jobs: int = 1  # long jobs running at once; the rest wait in a queue
    verbose: bool = False
