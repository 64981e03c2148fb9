"""`llmw` end to end: the real command starts the lab, on loopback only."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llmw(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "llm_workings", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def test_help_lists_the_lab():
    out = subprocess.run([sys.executable, "-m", "llm_workings", "--help"], capture_output=True, text=True, check=True).stdout
    assert "lab" in out and "start the lab" in out


def test_lab_serves_on_loopback_and_says_where():
    port = free_port()
    proc = llmw("lab", "--no-browser", "--port", str(port))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/backprop/schema")
                resp = conn.getresponse()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("llmw lab did not answer within 20 s")
                time.sleep(0.05)
        assert resp.status == 200
        # Bound to 127.0.0.1 only: no other local address answers.
        with socket.socket() as s:
            s.settimeout(1)
            other = socket.gethostbyname(socket.gethostname())
            if not other.startswith("127."):
                assert s.connect_ex((other, port)) != 0
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}" in out


def test_a_busy_port_is_reported_clearly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = llmw("lab", "--no-browser", "--port", str(port))
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
