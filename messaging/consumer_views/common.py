"""What every consumer view shares: staff only, the consumer or dead letter asked for, and the way back."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from messaging.dead_letters import dead_letter_get
from messaging.models import DeadLetter
from messaging.topology import SUBSCRIPTIONS


def staff_required(view):
    """Anonymous visitors go to the login page; signed-in customers get 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("staff only")
        return view(request, *args, **kwargs)

    return wrapper


def _known(consumer: str) -> str:
    if consumer not in SUBSCRIPTIONS:
        raise Http404(f"no consumer {consumer!r}")
    return consumer


def _dead_letter(consumer: str, dead_letter_id: int) -> DeadLetter:
    try:
        return dead_letter_get(consumer=_known(consumer), dead_letter_id=dead_letter_id)
    except DeadLetter.DoesNotExist:
        raise Http404(f"no dead letter {dead_letter_id} for {consumer}") from None


def _next_url(request, consumer: str) -> str:
    """Where a control sends staff back to: the page the panel is on, if it is one of ours."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return reverse("consumers:consumer", args=[consumer])


def _back(request, consumer: str):
    return redirect(f"{_next_url(request, consumer)}#consumer-{consumer}")
