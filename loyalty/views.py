"""Loyalty's staff dashboard: the accounts and the points ledger it holds, and its two consumers."""
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from loyalty.selectors import account_list, account_totals, points_transaction_list
from messaging.consumer_views import consumer_panel_context, staff_required

ROWS_PER_PAGE = 50


@require_GET
@staff_required
def dashboard(request):
    accounts = account_list()
    here = request.get_full_path()
    return render(request, "loyalty/dashboard.html", {
        "accounts": Paginator(accounts, ROWS_PER_PAGE).get_page(request.GET.get("accounts_page")),
        "ledger": Paginator(points_transaction_list(), ROWS_PER_PAGE).get_page(request.GET.get("ledger_page")),
        "totals": account_totals(),
        "panels": [consumer_panel_context(request, consumer=consumer, next_url=here)
                   for consumer in ("loyalty", "loyalty-bonus")],
    })
