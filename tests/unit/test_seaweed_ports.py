"""The S3 test server's ports (testing/seaweed.py): a restart on the same ports must not meet
a port the kernel gave to an outgoing connection meanwhile."""

from __future__ import annotations

from pathlib import Path

from shadowtutor.testing import seaweed


def test_ports_and_their_grpc_ports_stay_below_the_ephemeral_range() -> None:
    low = seaweed.ephemeral_low()
    for _ in range(50):
        ports = seaweed.free_ports(4)
        assert len(set(ports)) == 4
        assert all(p + 10_000 < low for p in ports), (ports, low)


def test_the_ephemeral_range_is_read_from_the_kernel(tmp_path: Path) -> None:
    table = tmp_path / "range"
    table.write_text("40000\t60999\n")
    assert seaweed.ephemeral_low(str(table)) == 40000
    assert seaweed.ephemeral_low(str(tmp_path / "missing")) == 32768
