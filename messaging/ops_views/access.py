"""Who may use the operations view: staff only."""
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def staff_required(view):
    """Anonymous users go to the login page; signed-in customers get 403 (a redirect would loop)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("the operations view is for staff")
        return view(request, *args, **kwargs)

    return wrapped
