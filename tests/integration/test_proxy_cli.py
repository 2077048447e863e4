"""`shadowtutor proxy` as a user runs it: in a terminal, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from shadowtutor.testing.faults import wait_until_up
from tests.support.browser import free_port


def test_ctrl_c_stops_the_proxy_with_exit_code_0(home: Path) -> None:
    """Issue 27 item 6: Ctrl-C ended `shadowtutor proxy` with "Aborted!" and exit code 1."""
    port = free_port()
    env = {**os.environ, "SHADOWTUTOR_TEACHER_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shadowtutor.cli", "proxy", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}/healthz", what="the proxy", timeout_s=60)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Aborted!" not in out and "Traceback" not in out
    assert "proxy stopped" in out


def test_an_idle_keep_alive_connection_is_closed_after_the_setting(home: Path) -> None:
    """Issue 27 item 6: idle keep-alive connections to the proxy were never closed by a
    setting (15-30 s seen); `SHADOWTUTOR_PROXY_KEEP_ALIVE_S` bounds them."""
    import socket
    import time

    port = free_port()
    env = {
        **os.environ,
        "SHADOWTUTOR_TEACHER_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        "SHADOWTUTOR_PROXY_KEEP_ALIVE_S": "1",
        "SHADOWTUTOR_COMPANION": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "shadowtutor.cli", "proxy", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}/healthz", what="the proxy", timeout_s=60)
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: proxy\r\n\r\n")
            conn.settimeout(20)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            idle_from = time.monotonic()
            while conn.recv(65536):  # the rest of the answer, then the server's close
                pass
            idle = time.monotonic() - idle_from
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert idle < 3.0, f"the idle connection stayed open {idle:.1f} s"
