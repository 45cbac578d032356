"""What a server costs before anyone connects: no worker process, a settled collector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from notification_service.config import PROJECT_ROOT
from notification_service.webpush import crypto

from .support import WAIT


def children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


async def test_a_started_server_runs_no_worker_process(spawn):
    """The Web Push encryption pool (and multiprocessing's resource tracker) waits for a fan-out."""
    node = await spawn()
    assert children(node.pid) == []


def test_the_lazy_pool_starts_its_processes_on_first_use():
    pool = crypto.LazyProcessPool(1)
    assert not pool.started
    key = bytes.fromhex("04" + "11" * 64)  # not a point on the curve: encrypt_many answers None
    assert pool.submit(crypto.encrypt_many, b"hi", [(key, b"a" * 16)]).result(WAIT * 6) == [None]
    assert pool.started
    pool.shutdown()
    assert not pool.started


def test_settling_after_start_up_freezes_and_raises_the_thresholds():
    """In a process of its own: the test process keeps its own collector settings."""
    script = ("import gc; from notification_service import gctuning; "
              "gctuning.settle_after_startup(); "
              "print(gc.get_freeze_count() > 1000, gc.get_threshold() == gctuning.THRESHOLDS)")
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out == ["True", "True"]
