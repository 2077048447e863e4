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
