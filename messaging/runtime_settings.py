"""Switches flipped at run time from the operations view, shared by every process through `default`."""
from messaging.models import RuntimeSetting

CHECKOUT_MODE = "checkout.mode"  # {"mode": "async" | "sync"}


def runtime_setting_get(*, key: str, default: dict | None = None) -> dict:
    setting = RuntimeSetting.objects.using("default").filter(key=key).first()
    return setting.value if setting else dict(default or {})


def runtime_setting_set(*, key: str, value: dict) -> None:
    RuntimeSetting.objects.using("default").update_or_create(key=key, defaults={"value": value})
