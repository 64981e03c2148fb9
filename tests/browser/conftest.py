"""Browser tests: Debian's chromium driven through Playwright against a lab server on 127.0.0.1.

Without chromium (or Playwright) the tests skip, except under CI, where that is a failure.
The page's CSP forbids eval, so waits poll with page.evaluate instead of wait_for_function.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field

import pytest

from llm_workings.lab.server import serve_in_thread

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    if _in_ci():
        pytest.fail(f"browser tests need {reason}, and CI is set: install it (scripts/setup.sh test)")
    pytest.skip(f"{reason} is not installed")


def chromium_path() -> str | None:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    return found if os.path.exists(found) else None


@pytest.fixture(scope="session")
def lab_server():
    server = serve_in_thread(port=0)
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def checkpoint_lab(hf_checkpoint_paths):
    """A lab serving the bundled models and the random-weight Hugging Face checkpoints of the root
    conftest's `hf_checkpoint_paths` ("cli.gpt2-random", "cli.neox-random", "cli.llama-random").
    One per session: each page's tests share its loaded models."""
    from llm_workings.lab.config import LabConfig

    server = serve_in_thread(LabConfig(models=hf_checkpoint_paths))
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        _unavailable("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright (the Python package)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class LabPage:
    """One tab on the lab, with every request and console error it produced."""

    page: object
    base: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, query: str = "", path: str = "/backprop") -> LabPage:
        self.page.goto(self.base + path + query)
        if path == "/backprop":
            self.wait("!!(window.__lab && window.__lab.ready)")
            self.idle()
        return self

    def wait(self, expression: str, timeout: float = 30.0):
        end = time.monotonic() + timeout
        while True:
            value = self.page.evaluate(expression)
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout}s waiting for {expression}")
            time.sleep(0.03)

    def idle(self) -> None:
        self.wait("!window.__lab.busy && !window.__lab.playing")

    def state(self) -> dict:
        return self.page.evaluate("window.__lab.state")

    def click(self, selector: str) -> None:
        self.page.click(selector)
        self.idle()

    def step_forward(self, times: int = 1) -> None:
        for _ in range(times):
            self.click("#forward")

    def numbers(self, scope: str = "#computation") -> list[dict]:
        """Every number the scope shows: its trace key, full-precision value and visible text."""
        return self.page.evaluate(
            """(scope) => [...document.querySelectorAll(`${scope} [data-key]`)].map((el) => ({
                key: el.dataset.key, value: el.dataset.value, text: el.textContent.trim() }))""",
            scope,
        )

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()


def _tab_maker(browser, server):
    """A function that opens tabs on `server` (each in its own browser context), and the contexts to close."""
    contexts = []

    def make() -> LabPage:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        tab = LabPage(page, server.url)
        page.on("request", lambda r: tab.requests.append(r.url))
        page.on("console", lambda m: m.type == "error" and tab.errors.append(m.text))
        page.on("pageerror", lambda e: tab.errors.append(f"uncaught: {e}"))
        return tab

    return make, contexts


@pytest.fixture
def new_tab(browser, lab_server):
    """Opens tabs on the default lab; closes them after the test."""
    make, contexts = _tab_maker(browser, lab_server)
    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def tab(new_tab) -> LabPage:
    return new_tab()


@pytest.fixture
def checkpoint_tab(browser, checkpoint_lab) -> LabPage:
    """A tab on `checkpoint_lab` (the bundled models and the random GPT-2, NeoX and Llama checkpoints)."""
    make, contexts = _tab_maker(browser, checkpoint_lab)
    yield make()
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def deep_lab(deep_model_dir):
    """A lab serving the bundled models and the deep random model of tests/conftest.py, "cli.deep-random",
    on which a patching sweep of a long prompt takes seconds: long enough to watch and cancel."""
    from llm_workings.lab.config import LabConfig

    server = serve_in_thread(LabConfig(models=(str(deep_model_dir),)))
    yield server
    server.shutdown()


@pytest.fixture
def deep_tab(browser, deep_lab) -> LabPage:
    """A tab on `deep_lab`."""
    make, contexts = _tab_maker(browser, deep_lab)
    yield make()
    for context in contexts:
        context.close()
