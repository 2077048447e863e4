"""A `logs compact` killed with SIGKILL while its Parquet part is staged (issue 27 item 5).

    killed_compaction(log_dir)   # returns once the child is dead, its staging files left

The child runs the real compaction with the part's writer replaced by one that stages bytes
and then waits to be killed: kill -9 runs no cleanup, as in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

CHILD = """
import sys, time
from shadowtutor.config import Settings
from shadowtutor.log import compaction

def staged_then_wait(con, where, valid, others, staged, target):
    staged.write_bytes(b"half a part")
    print("staged", flush=True)
    time.sleep(120)

compaction._write_part = staged_then_wait
# a bucket needs its settings (credentials, endpoint): the environment's, as the CLI reads them
compaction.compact(Settings.load().log_path if sys.argv[1].startswith("s3://") else sys.argv[1])
"""


def killed_compaction(log_dir: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, log_dir], stdout=subprocess.PIPE, env=dict(os.environ)
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == b"staged", "the child compaction did not run"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
