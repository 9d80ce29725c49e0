"""The correlation id follows a request or a message into the Celery jobs it sends, and back out."""
from types import SimpleNamespace

from messaging import correlation
from messaging.correlation import current_correlation_id


def test_a_job_sent_while_handling_a_message_carries_its_correlation_id():
    token = current_correlation_id.set("order-42")
    try:
        headers = {}
        correlation._stamp_job(headers=headers)
    finally:
        current_correlation_id.reset(token)

    assert headers == {"eventshop_correlation_id": "order-42"}


def test_a_job_runs_under_the_correlation_id_it_carries_and_leaves_none_behind():
    task = SimpleNamespace(request=SimpleNamespace(get={"eventshop_correlation_id": "order-43", "correlation_id": "the-task-id"}.get))

    correlation._adopt_job_correlation(task_id="t-1", task=task)
    inside = current_correlation_id.get()
    correlation._forget_job_correlation(task_id="t-1")

    assert (inside, current_correlation_id.get()) == ("order-43", "")
