"""Train the bundled models from their recipes and copy them into the package (maintainers only).

    python scripts/bundle_zoo.py                      # every recipe, in runs/NAME, resumable
    python scripts/bundle_zoo.py modadd-113           # one

What ships: config.json, model.safetensors, tokenizer.json, card.json and snapshots/. The checkpoint
(weights plus the optimizer's moments) stays in runs/: it is for resuming, not for using.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from llm_workings.zoo import RECIPES, run_recipe
from llm_workings.zoo.registry import bundled_root

SHIPPED = ("config.json", "model.safetensors", "tokenizer.json", "card.json")


def bundle(name: str) -> None:
    run_dir = Path("runs") / name
    run_recipe(RECIPES[name], run_dir)
    if not (run_dir / "card.json").is_file():
        sys.exit(f"{name}: training was interrupted; run this again to resume")
    target = bundled_root() / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for file in SHIPPED:
        if (run_dir / file).is_file():
            shutil.copy2(run_dir / file, target / file)
    if (run_dir / "snapshots").is_dir():
        shutil.copytree(run_dir / "snapshots", target / "snapshots", ignore=shutil.ignore_patterns(".tmp-*"))
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    print(f"{name}: bundled {size / 1e6:.1f} MB in {target}")


if __name__ == "__main__":
    for name in sys.argv[1:] or list(RECIPES):
        bundle(name)
