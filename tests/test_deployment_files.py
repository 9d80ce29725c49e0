"""docker-compose.yml, the Makefile, the README and .ci/run stay in step with the code.

No Docker engine runs where the tests do, so these checks are what keep the compose file honest:
every command it runs exists, every consumer has a service, every variable it sets is read.
"""
import json
import re
import shlex
from pathlib import Path

import yaml
from django.core.management import get_commands
from django.urls import resolve

from messaging.topology import SUBSCRIPTIONS
from shop.apis.orders import OrderPlaceApi
from shop.management.commands.seed_demo import PRODUCTS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _commands():
    for name, service in SERVICES.items():
        command = service.get("command")
        if command:
            for part in re.split(r"&&", command if isinstance(command, str) else " ".join(command)):
                yield name, shlex.split(part.replace('sh -c "', "").rstrip('"'))


def test_every_manage_py_command_in_compose_exists():
    known = get_commands()
    used = [argv[2] for _, argv in _commands() if argv[:2] == ["python", "manage.py"]]
    assert used, "compose runs no manage.py command"
    assert [command for command in used if command not in known] == []


def test_every_subscriber_has_a_consumer_service_and_every_consumer_service_a_subscriber():
    consumed = {argv[3] for _, argv in _commands() if argv[:3] == ["python", "manage.py", "consume"]}
    assert consumed == set(SUBSCRIPTIONS)


def test_compose_runs_the_broker_database_web_relay_and_a_worker_with_health_checks():
    assert {"rabbitmq", "postgres", "web", "relay", "worker"} <= set(SERVICES)
    for name in ("rabbitmq", "postgres", "web"):
        assert "healthcheck" in SERVICES[name], name
    assert "management" in SERVICES["rabbitmq"]["image"]


def test_every_environment_variable_compose_sets_is_read_by_the_settings():
    settings_source = "\n".join(path.read_text() for path in (ROOT / "config" / "settings").glob("*.py"))
    variables = set(SERVICES["web"]["environment"]) - {"DJANGO_SETTINGS_MODULE"}
    assert [name for name in sorted(variables) if f'"{name}"' not in settings_source] == []


def test_compose_creates_the_databases_its_urls_name():
    init_sql = (ROOT / "docker" / "postgres-init.sql").read_text()
    for variable, url in SERVICES["web"]["environment"].items():
        if variable.endswith("_DATABASE_URL"):
            assert f"CREATE DATABASE {url.rsplit('/', 1)[1]};" in init_sql


def test_the_readme_opens_with_the_demo_and_test_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block
    assert readme.index("make demo") < 600, "the set-up commands must be at the top"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "CI=true" in ci and "make test" in ci


def test_compose_gives_each_secret_production_requires_its_own_demo_value_and_serves_plain_http():
    required = re.findall(r'env_required\("(\w+)"\)', (ROOT / "config" / "settings" / "production.py").read_text())
    environment = SERVICES["web"]["environment"]
    assert {"DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN", "CALLBACK_SIGNING_SECRET"} <= set(required)
    values = [environment[name] for name in required]
    assert len(set(values)) == len(values), "two secrets share a value"
    assert all("demo" in value for value in values), "compose's secrets must say they are demo values"
    assert (environment["DJANGO_SECURE_SSL_REDIRECT"], environment["DJANGO_SECURE_HSTS_SECONDS"]) == ("false", "0")


def test_the_readme_places_an_order_the_api_accepts():
    readme = (ROOT / "README.md").read_text()
    assert readme.index("/api/orders/") < 2000, "the API example belongs near the top"
    urls = re.findall(r"http://127\.0\.0\.1:8000(/api/[\w/]+)", readme[:2000])
    assert {resolve(url).url_name for url in urls} == {"auth-token", "order-list"}
    body = json.loads(re.search(r"-d '(\{.*?\})'", readme, re.DOTALL).group(1))
    serializer = OrderPlaceApi.InputSerializer(data=body)
    assert serializer.is_valid(), serializer.errors
    in_stock = {sku for sku, _, _, stock, _ in PRODUCTS if stock > 0}
    assert {item["sku"] for item in body["items"]} <= in_stock
