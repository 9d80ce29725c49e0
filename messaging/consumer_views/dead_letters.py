"""One dead letter's page: its headers and its body, as text, JSON or bytes."""
import json

from django.shortcuts import render
from django.views.decorators.http import require_GET

from messaging.consumer_views.common import _dead_letter, _next_url, staff_required


@require_GET
@staff_required
def dead_letter_detail(request, consumer: str, dead_letter_id: int):
    letter = _dead_letter(consumer, dead_letter_id)
    body = bytes(letter.body)
    try:
        body.decode("utf-8")
        is_text = True
    except UnicodeDecodeError:
        is_text = False
    try:
        formatted = json.dumps(json.loads(body), indent=2, ensure_ascii=False) if is_text else ""
    except ValueError:
        formatted = ""
    return render(request, "messaging/consumer/dead_letter.html", {
        "consumer": consumer,
        "letter": letter,
        "body_size": len(body),
        "body_is_text": is_text,
        "body_hex": " ".join(f"{byte:02x}" for byte in body[:512]),
        "body_formatted": formatted,
        "next": _next_url(request, consumer),
    })
