"""No statement in the package follows a `return`, `raise`, `continue` or `break` in the same block.

Such a statement never runs, and Python says nothing: a refactor once left `TransformerConfig.to_json`
indented under a module function after its `return`, and the method silently stopped existing.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
JUMPS = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def unreachable(source: str, filename: str) -> list[str]:
    """'file:line' for each statement that follows a jump in its block, with the jump's line."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        for _, block in ast.iter_fields(node):
            if not (isinstance(block, list) and block and isinstance(block[0], ast.stmt)):
                continue
            for jump, after in zip(block, block[1:]):
                if isinstance(jump, JUMPS):
                    found.append(
                        f"{filename}:{after.lineno} is unreachable (after the {type(jump).__name__.lower()} on line {jump.lineno})"
                    )
                    break
    return found


def test_no_module_has_a_statement_after_a_jump():
    modules = sorted(SRC.rglob("*.py"))
    assert len(modules) > 50  # the package was found
    problems = [p for path in modules for p in unreachable(path.read_text(), str(path.relative_to(SRC)))]
    assert not problems, "\n".join(problems)


def test_the_check_finds_code_after_each_kind_of_jump():
    source = """
def f(x):
    for i in x:
        if i:
            continue
            print("after continue")
        while i:
            break
            i -= 1
    try:
        raise ValueError
        x = 1
    except ValueError:
        return 1
        x = 2
    return 2

    def dead_method(self):
        return 3
"""
    lines = sorted(int(p.split(" ")[0].split(":")[1]) for p in unreachable(source, "m.py"))
    assert lines == [6, 9, 12, 15, 18]
