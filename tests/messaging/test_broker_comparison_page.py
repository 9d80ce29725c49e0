"""/ops/brokers/: staff only; the matrix always; the last run's figures once there is one; one quick run at a time."""
import json

import pytest
from django.urls import reverse

from messaging import broker_comparison

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


@pytest.fixture
def staff_browser(client, staff):
    client.force_login(staff)
    return client


def a_run(run_id="run-under-test"):
    """Results shaped as bench/comparison/runner.py writes them, with figures this test made up."""
    measured = {"status": "measured", "steps": {
        "publish": {"relay_msg_s": 123.4, "plain_msg_s": 56.7, "messages": 30},
        "latency": {"p50_ms": 11.0, "p95_ms": 22.0, "p99_ms": 33.0, "orders": 10},
        "consumers_1": {"msg_s": 44.0}, "consumers_2": {"msg_s": 66.0},
        "ordering_1": {"out_of_order": 0, "orders": 15}, "ordering_2": {"out_of_order": 3, "orders": 15},
        "ordering_option": {"status": "not measurable", "reason": "no ordering option"},
        "kill": {"redelivered": 4, "duplicates_absorbed": 1, "lost": 0},
        "restart": {"status": "skipped", "reason": "quick"}, "memory": {"mib": 77.5}}}
    return {"schema": 1, "run_id": run_id, "started_at": "2026-12-01T10:00:00+00:00",
            "finished_at": "2026-12-01T10:05:00+00:00", "quick": True,
            "load": {"messages": 30, "orders": 10, "order_rate": 2.0, "ordering_orders": 15, "restart_orders": 0,
                     "restart": False},
            "machine": {"cpus": 2, "platform": "Linux", "python": "3.11", "load_average_at_start": [0.5, 0.5, 0.5]},
            "brokers": {"embedded": measured,
                        "activemq": {"status": "skipped", "reason": "ActiveMQ (STOMP) is not reachable on 127.0.0.1:61613"}}}


def test_anonymous_visitors_are_sent_to_log_in(client, var_dir):
    response = client.get(reverse("ops:brokers"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_customer_is_refused(client, customer, var_dir):
    client.force_login(customer)
    assert client.get(reverse("ops:brokers")).status_code == 403
    assert client.get(reverse("ops:brokers_progress")).status_code == 403
    assert client.post(reverse("ops:brokers_run")).status_code == 403


def test_without_a_results_file_the_page_says_no_run_yet_and_still_shows_the_matrix(staff_browser, var_dir):
    response = staff_browser.get(reverse("ops:brokers"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No run yet" in html
    for name in ("RabbitMQ", "Embedded (SQLite)", "Amazon SQS + SNS", "ActiveMQ Classic"):
        assert name in html
    assert "per-key ordering" in html and "consumers in queue depths" in html


def test_the_page_names_the_broker_this_deployment_runs_on(staff_browser, var_dir, settings):
    settings.BROKER_URL = "stomp://127.0.0.1:61613"
    html = staff_browser.get(reverse("ops:brokers")).content.decode()
    assert 'data-current-broker="activemq"' in html and "ActiveMQ Classic</strong>" in html


def test_the_last_runs_figures_are_shown_as_a_table_and_bars(staff_browser, var_dir):
    (var_dir / broker_comparison.RESULTS_NAME).write_text(json.dumps(a_run()))
    html = staff_browser.get(reverse("ops:brokers")).content.decode()
    assert 'data-run-id="run-under-test"' in html and "No run yet" not in html
    assert 'data-broker="embedded" data-value="123.4"' in html  # the relay's bar
    assert "11.0 / 22.0 / 33.0" in html  # latency in the table
    assert "3 of 15" in html
    assert "ActiveMQ: skipped — ActiveMQ (STOMP) is not reachable" in html


def test_the_run_button_starts_one_quick_run_at_a_time(staff_browser, var_dir, monkeypatch):
    started = []

    class FakeProcess:
        pid = 4242

    monkeypatch.setattr(broker_comparison.subprocess, "Popen", lambda command, **kwargs: started.append(command) or FakeProcess())
    monkeypatch.setattr(broker_comparison, "_alive", lambda pid: pid == 4242)
    response = staff_browser.post(reverse("ops:brokers_run"), follow=True)
    assert [command[-4:] for command in started] == [["brokers", "compare", "--quick", "--no-docs-copy"]]
    assert "started in the background" in response.content.decode()
    assert staff_browser.get(reverse("ops:brokers_progress")).json()["progress"]["state"] == "running"

    response = staff_browser.post(reverse("ops:brokers_run"), follow=True)
    assert len(started) == 1 and "running already" in response.content.decode()


def test_a_run_whose_process_is_gone_is_reported_failed_not_running(staff_browser, var_dir):
    (var_dir / broker_comparison.PROGRESS_NAME).write_text(json.dumps({"pid": 999_999_999, "state": "running", "brokers": {}}))
    progress = staff_browser.get(reverse("ops:brokers_progress")).json()["progress"]
    assert progress["state"] == "failed"
