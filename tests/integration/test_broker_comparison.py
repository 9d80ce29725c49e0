"""`manage.py brokers compare --quick`: a tiny comparison on every broker this machine runs, its file checked.

The test gives the run its id and a private var/ folder, so every figure it reads was written by
this run; the docs' copy is left alone (--no-docs-copy).
"""
import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

from tests.integration.backends import IN_CI
from tests.integration.stack import PROJECT_ROOT

MESSAGES = 12
STEPS = ("latency", "consumers_1", "consumers_2", "ordering_1", "ordering_2", "ordering_option", "kill", "restart",
         "publish", "memory")


def test_a_quick_comparison_measures_each_reachable_broker_and_writes_every_figure_from_this_run(tmp_path):
    run_id = f"test-{uuid.uuid4().hex}"
    docs_copy = PROJECT_ROOT / "docs" / "brokers-comparison.json"
    docs_before = hashlib.sha256(docs_copy.read_bytes()).hexdigest() if docs_copy.exists() else None
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    env = {**os.environ, "EVENTSHOP_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings.base",
           "DJANGO_DEBUG": "false"}
    result = subprocess.run([sys.executable, "manage.py", "brokers", "compare", "--quick", "--messages", str(MESSAGES),
                             "--no-docs-copy", "--run-id", run_id], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # A progress bar per broker, ending full.
    for broker in ("embedded", "rabbitmq", "activemq", "sqs"):
        assert f"{broker:<9} [{'#' * 24}]" in result.stdout

    results = json.loads((tmp_path / "brokers-comparison.json").read_text())
    progress = json.loads((tmp_path / "brokers-progress.json").read_text())
    assert results["run_id"] == progress["run_id"] == run_id and progress["state"] == "done"
    assert started <= datetime.fromisoformat(results["started_at"]) <= datetime.fromisoformat(results["finished_at"])
    assert results["quick"] is True and results["load"]["messages"] == MESSAGES and results["load"]["restart"] is False
    assert set(results["matrix"]) == {"embedded", "rabbitmq", "activemq", "sqs"}
    assert docs_before == (hashlib.sha256(docs_copy.read_bytes()).hexdigest() if docs_copy.exists() else None)

    assert results["brokers"]["embedded"]["status"] == "measured"
    for broker, measured in results["brokers"].items():
        if measured["status"] == "skipped":
            assert measured["reason"] and not IN_CI, f"{broker} skipped: {measured['reason']}"
            continue
        assert measured["status"] == "measured", measured
        steps = measured["steps"]
        assert set(STEPS) <= set(steps)
        errors = {name: step["error"] for name, step in steps.items() if "error" in step}
        assert not errors, f"{broker}: {errors}"
        # The figures describe this run's own workload.
        assert steps["publish"]["messages"] == MESSAGES and steps["publish"]["relay_msg_s"] > 0 < steps["publish"]["plain_msg_s"]
        assert steps["latency"]["orders"] == results["load"]["orders"] and steps["latency"]["without_shipment"] == 0
        assert 0 < steps["latency"]["p50_ms"] <= steps["latency"]["p95_ms"] <= steps["latency"]["p99_ms"]
        for processes in (1, 2):
            consumers = steps[f"consumers_{processes}"]
            assert consumers["processes"] == processes and sum(consumers["per_process"]) == MESSAGES
            assert consumers["msg_s"] and consumers["msg_s"] > 0
        for name in ("ordering_1", "ordering_2"):
            assert steps[name]["orders"] == results["load"]["ordering_orders"]
            assert 0 <= steps[name]["out_of_order"] <= steps[name]["orders"]
        assert steps["ordering_1"]["out_of_order"] == 0 or broker == "sqs", "one consumer keeps order"
        if steps["ordering_option"].get("status") != "not measurable":
            assert steps["ordering_option"]["option"]
        kill = steps["kill"]
        assert kill["messages"] == MESSAGES and kill["lost"] == 0 and kill["shipments"] == MESSAGES
        assert kill["redelivered"] or not kill["duplicates_absorbed"], "a duplicate is a redelivery"
        assert steps["restart"]["status"] in ("skipped", "not measurable") and steps["restart"]["reason"]
        assert steps["memory"]["mib"] > 0
