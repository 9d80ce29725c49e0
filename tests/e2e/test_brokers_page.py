"""/ops/brokers/ in a browser: the capabilities matrix and the figures of a comparison run just made."""
import uuid

from tests.e2e.conftest import log_in
from tests.integration.stack import PROJECT_ROOT

# Not docs/screenshots/ (tracked): a picture for a person to look at, under the ignored var/.
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"


def test_staff_see_the_matrix_and_the_figures_of_the_last_comparison(page, embedded_stack):
    stack = embedded_stack
    run_id = f"e2e-{uuid.uuid4().hex}"
    # A tiny real run on the embedded broker, into this deployment's var/ (never the docs' copy).
    stack.manage("brokers", "compare", "--quick", "--brokers", "embedded", "--messages", "10", "--no-docs-copy",
                 "--run-id", run_id, timeout=900)
    stack.start("web")
    log_in(page, stack.base_url, "staff")
    page.goto(f"{stack.base_url}/ops/")
    page.click("text=Brokers compared")
    page.wait_for_url("**/ops/brokers/")

    assert page.locator("[data-current-broker]").text_content() == "Embedded (SQLite)"
    matrix = page.locator("table.capability-matrix")
    for name in ("RabbitMQ", "Embedded (SQLite)", "Amazon SQS + SNS", "ActiveMQ Classic"):
        assert name in matrix.locator("thead").text_content()
    assert matrix.locator("tbody tr").count() == 12

    assert page.locator(f"[data-run-id='{run_id}']").count() == 1
    relay_bar = page.locator("[data-chart='publish-relay_msg_s'] rect[data-broker='embedded']")
    assert float(relay_bar.get_attribute("data-value")) > 0 and float(relay_bar.get_attribute("width")) > 0
    latency_bar = page.locator("[data-chart='latency-p50_ms'] rect[data-broker='embedded']")
    assert float(latency_bar.get_attribute("data-value")) > 0
    assert "purchase → shipment latency" in page.locator("table.comparison-table").text_content()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "ops-brokers.png"), full_page=True)
