"""The broker comparison as the ops page sees it: the last run's results, a running run's progress,
and starting a short run (`manage.py brokers compare --quick`) in the background, one at a time.

The run itself is bench/comparison/ (see docs/brokers.md#measured); this module only reads its
files under var/ and starts its command.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

RESULTS_NAME = "brokers-comparison.json"
PROGRESS_NAME = "brokers-progress.json"
LOG_NAME = "brokers-comparison.log"


def _var() -> Path:
    return Path(settings.VAR_DIR)


def comparison_results() -> dict | None:
    """The last run's results (var/brokers-comparison.json), or None before the first run."""
    try:
        return json.loads((_var() / RESULTS_NAME).read_text())
    except (OSError, ValueError):
        return None


def comparison_progress() -> dict | None:
    """The progress file of the current or last run; `state` says running, done or failed."""
    try:
        progress = json.loads((_var() / PROGRESS_NAME).read_text())
    except (OSError, ValueError):
        return None
    if progress.get("state") == "running" and not _alive(progress.get("pid")):
        progress.update(state="failed", error="the run's process ended without finishing (see var/brokers-comparison.log)")
    return progress


def comparison_running() -> bool:
    progress = comparison_progress()
    return bool(progress and progress.get("state") == "running")


def comparison_start_quick(*, brokers: str | None = None) -> bool:
    """Start `manage.py brokers compare --quick` in the background; False if one is running already."""
    if comparison_running():
        return False
    var = _var()
    var.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "brokers", "compare", "--quick",
               "--no-docs-copy"]
    if brokers:
        command += ["--brokers", brokers]
    with open(var / LOG_NAME, "ab") as log:
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    # The run writes its own progress file once Django is up; until then, this one says it started.
    current = comparison_progress() or {}
    if current.get("pid") != process.pid:
        (var / PROGRESS_NAME).write_text(json.dumps({"run_id": "", "pid": process.pid, "state": "running", "brokers": {}}))
    return True


def _alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return not Path(f"/proc/{pid}/stat").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
