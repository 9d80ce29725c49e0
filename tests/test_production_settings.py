"""config/settings/production.py: `check --deploy` passes, and it will not start on a missing, default or
shared secret. Each case starts Django afresh in a subprocess, as a deployment would."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {
    "DJANGO_SECRET_KEY": "a-production-secret-key-of-fifty-characters-or-more-xyz",
    "INTERNAL_API_TOKEN": "a-production-internal-token",
    "CALLBACK_SIGNING_SECRET": "a-production-callback-signing-secret",
}


def manage_py_check_deploy(**env: str) -> subprocess.CompletedProcess:
    # Only what the deployment sets: none of the test run's own variables.
    inherited = {name: value for name, value in os.environ.items()
                 if name not in SECRETS and not name.startswith(("DJANGO_", "EVENTSHOP_"))}
    environment = {**inherited, "DJANGO_SETTINGS_MODULE": "config.settings.production",
                   "DJANGO_ALLOWED_HOSTS": "shop.example.com", **env}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                          env={name: value for name, value in environment.items() if value is not None},
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_reports_no_issue_with_the_production_defaults():
    result = manage_py_check_deploy(**SECRETS)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_a_missing_secret_stops_start_up_naming_the_variable(name):
    result = manage_py_check_deploy(**{**SECRETS, name: None})

    assert result.returncode != 0
    assert f"ImproperlyConfigured: Set the environment variable {name}" in result.stderr


def test_a_secret_reused_as_another_is_refused():
    result = manage_py_check_deploy(**{**SECRETS, "CALLBACK_SIGNING_SECRET": SECRETS["DJANGO_SECRET_KEY"]})

    assert result.returncode != 0
    assert "CALLBACK_SIGNING_SECRET has the same value as DJANGO_SECRET_KEY" in result.stderr


def test_a_development_default_is_refused():
    result = manage_py_check_deploy(**{**SECRETS, "INTERNAL_API_TOKEN": "dev-only-internal-token"})

    assert result.returncode != 0
    assert "INTERNAL_API_TOKEN is the development default" in result.stderr
