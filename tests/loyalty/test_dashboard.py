"""Loyalty's staff dashboard: accounts, the points ledger, and the panels of its two consumers."""
import re
import uuid

import pytest
from django.urls import reverse

from loyalty.models import LoyaltyAccount, PointsTransaction
from messaging.consumer import EventConsumer
from messaging.topology import SUBSCRIPTIONS
from tests.messaging.builders import RecordingRetryScheduler, delivery, envelope, purchase

pytestmark = pytest.mark.django_db(databases=["default", "shipping", "loyalty"])

DASHBOARD = "/dashboards/loyalty/"


@pytest.fixture(autouse=True)
def quiet_broker(settings):
    settings.BROKER_URL = "memory://"  # the consumer panels ask the broker: never the demo's


@pytest.fixture
def staff_browser(client, staff):
    client.force_login(staff)
    return client


def entry(account: LoyaltyAccount, order_id: int, kind: str, points: int) -> PointsTransaction:
    return PointsTransaction.objects.create(account=account, order_id=order_id, kind=kind, points=points,
                                            event_id=uuid.uuid4())


def text_of(html_row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", html_row, re.S)]


def test_the_dashboard_has_its_name_and_address():
    assert reverse("loyalty:dashboard") == DASHBOARD


def test_anonymous_visitors_are_sent_to_log_in_and_customers_are_refused(client, customer):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"] == f"{reverse('shop:login')}?next={DASHBOARD}"

    client.force_login(customer)
    assert client.get(DASHBOARD).status_code == 403


def test_accounts_are_listed_with_customer_email_and_balance(staff_browser):
    LoyaltyAccount.objects.create(customer_id=7, email="ada@example.com", balance=123)
    LoyaltyAccount.objects.create(customer_id=8, email="", balance=0)

    html = staff_browser.get(DASHBOARD).content.decode()

    rows = dict(re.findall(r'<tr data-account="(\d+)">(.*?)</tr>', html, re.S))
    assert text_of(rows["7"]) == ["#7", "ada@example.com", "123"]
    assert text_of(rows["8"]) == ["#8", "—", "0"]
    assert re.search(r"data-accounts-total>2<", html)


def test_the_ledger_lists_awards_bonuses_and_reversals_newest_first(staff_browser):
    account = LoyaltyAccount.objects.create(customer_id=7, email="ada@example.com", balance=0)
    entries = [entry(account, 91, "award", 600), entry(account, 91, "bonus", 60), entry(account, 91, "reversal", -660)]

    html = staff_browser.get(DASHBOARD).content.decode()

    rows = re.findall(r'<tr data-entry="(\d+)">(.*?)</tr>', html, re.S)
    assert [int(pk) for pk, _ in rows] == [e.pk for e in reversed(entries)]
    assert [text_of(row)[1:] for _, row in rows] == [
        ["#91", "#7", "reversal", "-660"], ["#91", "#7", "bonus", "+60"], ["#91", "#7", "award", "+600"],
    ]


def test_the_dashboard_shows_what_the_real_consumers_credited(staff_browser):
    large = delivery(envelope(purchase(order_id=92, customer_id=5, total="600.00")))
    EventConsumer(SUBSCRIPTIONS["loyalty"]).process(large, RecordingRetryScheduler())
    EventConsumer(SUBSCRIPTIONS["loyalty-bonus"]).process(large, RecordingRetryScheduler())

    html = staff_browser.get(DASHBOARD).content.decode()

    assert text_of(re.search(r'<tr data-account="5">(.*?)</tr>', html, re.S).group(1)) == ["#5", "customer5@example.com", "660"]
    assert sorted(re.findall(r"data-kind>(\w+)<", html)) == ["award", "bonus"]


def test_both_consumer_panels_are_shown_and_the_bonus_one_says_it_takes_only_large_orders(staff_browser):
    EventConsumer(SUBSCRIPTIONS["loyalty"]).process(delivery(envelope(purchase(order_id=93))), RecordingRetryScheduler())

    html = staff_browser.get(DASHBOARD).content.decode()

    assert 'id="consumer-loyalty" data-panel-url="' in html and 'id="consumer-loyalty-bonus" data-panel-url="' in html
    loyalty_panel, bonus_panel = html.split('id="consumer-loyalty-bonus"')
    assert re.search(r'data-outcome="applied" data-window="total">1<', loyalty_panel)
    assert re.search(r'data-outcome="applied" data-window="total">0<', bonus_panel)
    assert re.search(r"takes only large orders.*routing key <code>shop\.purchase\.confirmed\.\*\.large</code>", html)
