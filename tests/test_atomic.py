"""atomic.py: a kept file is either its old self or its complete new self, with a new file's permissions."""

from __future__ import annotations

import os

import pytest

from llm_workings.atomic import atomic_path, write_json


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_atomic_write_has_a_new_files_permissions_even_when_the_writer_replaces_the_temporary(tmp_path):
    """safetensors' save_file replaces the file it is given by a private one; the result must still
    be readable as any file written here is, or an installed bundle is unreadable by other users."""
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    with atomic_path(path) as tmp:
        save_file({"x": torch.zeros(2)}, tmp)
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "state.json"
    write_json(path, {"step": 1})
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("{half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == '{\n "step": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
