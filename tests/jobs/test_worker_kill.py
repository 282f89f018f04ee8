"""kill -9 a real worker process mid-generation: another worker finishes the draft, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from blametrail import db
from blametrail.postmortems.models import GenerationRun, Postmortem
from blametrail.runtime import build_runtime
from tests.factories import Factory
from tests.jobs.test_consumer import _resolve_one, _wait_for

ROOT = Path(__file__).resolve().parents[2]


def _env(settings, queue_url, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLAMETRAIL_")}
    env.update(BLAMETRAIL_DATABASE_URL=settings.resolved_database_url, BLAMETRAIL_QUEUE_URL=queue_url,
               BLAMETRAIL_DATA_DIR=str(settings.data_dir), PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def test_sigkill_mid_generation_then_another_worker_finishes(settings, tmp_path):
    queue_url = f"sqlite:///{tmp_path / 'queue.db'}"
    rt = build_runtime(settings, migrate=False, queue_url=queue_url)  # enqueues only; no consumer here
    slow = subprocess.Popen([sys.executable, str(ROOT / "tests/jobs/slow_worker.py")], env=_env(settings, queue_url),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    worker = None
    try:
        f = Factory(rt)
        member = f.member(f.org(plan="pro"), "member")
        pm_id = _resolve_one(rt, member)
        assert _wait_for(rt, pm_id, {"generating"}, timeout=30) == "generating"
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait(timeout=10)
        with db.transaction(rt.factory) as s:
            assert s.get(Postmortem, pm_id).status == "generating"  # the row still says so: the sweep must fix it
        worker = subprocess.Popen(
            [sys.executable, "-m", "blametrail.cli", "worker", "--threads", "1"],
            env=_env(settings, queue_url, BLAMETRAIL_STALE_GENERATION_SECONDS=10, BLAMETRAIL_SWEEP_INTERVAL_SECONDS=0.5),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert _wait_for(rt, pm_id, {"draft", "failed"}, timeout=45) == "draft"
        with db.transaction(rt.factory) as s:
            runs = sorted(s.query(GenerationRun).filter_by(postmortem_id=pm_id), key=lambda r: r.id)
            assert [r.status for r in runs] == ["abandoned", "succeeded"]
            pm = s.get(Postmortem, pm_id)
            assert pm.attempt == 2 and pm.version == 2
    finally:
        for proc in (slow, worker):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        rt.close()
