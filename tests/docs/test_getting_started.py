"""Every code block of docs/getting-started.md, run in order as one shell session, the way a
reader types them, against loopback teacher and student servers.

What the harness changes, and only this: the page's addresses of the teacher
(https://api.openai.com/v1) and the student (http://127.0.0.1:11434) become loopback servers
speaking their protocols, and its ports (8501 for the dashboard, 8787 for the proxy) free ones;
`make demo` gets a free PORT and a small demo (DEMO_ARGS), runs in this checkout with this
test's virtualenv (`make -o` keeps it from reinstalling); the teacher's key is a dummy and
OPENAI_BASE_URL points the wrapped client at the loopback teacher. A command that serves
(`make demo`, `shadowtutor app`, `shadowtutor proxy`) starts in the background, as in a second
terminal, and the session waits until it answers; all of them are stopped at the end.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from shadowtutor.testing.modelserver import ModelServer

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.M | re.S)
SERVER = re.compile(r"^(?:[A-Z_]+=\S+\s+)*(make demo|shadowtutor app|shadowtutor proxy)\b")

PRELUDE = r"""
set -euo pipefail
servers=()
stop() { for pid in "${servers[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done; }
trap stop EXIT
make() { command make -o "$VENV/bin/.installed" -C "$ROOT" VENV="$VENV" "$@"; }
export -f make
serve() {  # serve URL LOG COMMAND: COMMAND in its own process group; wait until URL answers
  setsid bash -c "$3" >"$2" 2>&1 &
  servers+=($!)
  for _ in $(seq 900); do
    if curl -sf -o /dev/null "$1"; then return 0; fi
    if ! kill -0 "${servers[-1]}" 2>/dev/null; then echo "exited: $3"; cat "$2"; return 1; fi
    sleep 0.2
  done
  echo "no answer at $1 from: $3"; cat "$2"; return 1
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(page: str, ports: dict[str, int], logs: Path) -> str:
    """The page's blocks as one bash script (Python blocks as heredocs)."""
    health = {
        "make demo": f"http://127.0.0.1:{ports['demo']}/_stcore/health",
        "shadowtutor app": f"http://127.0.0.1:{ports['app']}/_stcore/health",
        "shadowtutor proxy": f"http://127.0.0.1:{ports['proxy']}/healthz",
    }
    parts = [PRELUDE]
    for kind, code in BLOCK.findall(page):
        if kind == "python":
            parts.append(f"python - <<'PYTHON_BLOCK'\n{code}PYTHON_BLOCK")
            continue
        for line in code.splitlines():
            server = SERVER.match(line)
            if server:
                name = server.group(1)
                log = logs / f"{name.replace(' ', '-')}.log"
                line = f"serve {health[name]} {log} {shlex.quote(line)}"
            parts.append(line)
    return "\n".join(parts) + "\n"


def test_every_block_of_getting_started_runs(tmp_path: Path) -> None:
    ports = {"demo": free_port(), "app": free_port(), "proxy": free_port()}
    venv = Path(sys.prefix)
    with (
        ModelServer(models=["gpt-4o-mini"]) as teacher,
        ModelServer(models=["llama3"]) as student,
    ):
        page = (
            PAGE.read_text()
            .replace("https://api.openai.com/v1", teacher.openai_url)
            .replace("http://127.0.0.1:11434", student.url)
            .replace("8501", str(ports["app"]))
            .replace("8787", str(ports["proxy"]))
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SHADOWTUTOR_", "OPENAI_")) and k != "DATABASE_URL"
        }
        env.update(
            PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
            VENV=str(venv),
            ROOT=str(ROOT),
            SHADOWTUTOR_HOME=str(tmp_path / "home"),
            PORT=str(ports["demo"]),
            DEMO_ARGS="--pairs 1500 --days 12",
            SHADOWTUTOR_PROXY_PORT=str(ports["proxy"]),
            OPENAI_BASE_URL=teacher.openai_url,
        )
        work = tmp_path / "work"
        work.mkdir()
        run = subprocess.run(
            ["bash", "-c", script(page, ports, tmp_path)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        out = run.stdout
        assert run.returncode == 0, f"{out}\n{run.stderr}"
        assert teacher.count("/v1/chat/completions") == 2  # the wrapper's and the proxy's call
        assert student.count("/api/chat") == 4  # those two, and the two replayed lines

    demo = (tmp_path / "make-demo.log").read_text()
    assert "generating 1,500 pairs over 12 days" in demo and "admin / demo-admin" in demo
    assert f"http://127.0.0.1:{ports['demo']}" in demo
    assert "logged: 1" in out  # the wrapped client's pair
    assert "echo: Ciao! Avete camere libere a marzo?" in out  # through the proxy
    assert '"status"' in out and '"ok"' in out  # /healthz
    assert re.search(r"^\d[\d,]* valid records, 0 bad lines", out, flags=re.M), out
    assert (work / "conversations.jsonl").exists()
