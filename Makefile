# One entry point. `make demo` runs the shop on the embedded default (no services needed);
# `make test` runs the whole test suite. Both create the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# `make demo BROKER=rabbitmq|activemq|sqs` runs the same demo on that broker (databases stay the
# embedded SQLite files), starting ActiveMQ or the SQS emulator when none is running.
BROKER ?= embedded
ifeq ($(BROKER),rabbitmq)
export BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//
else ifeq ($(BROKER),activemq)
export BROKER_URL ?= stomp://127.0.0.1:61613
START_BROKER := bash scripts/activemq/start.sh
else ifeq ($(BROKER),sqs)
export BROKER_URL ?= sqs://us-east-1?endpoint=http://127.0.0.1:4566
START_BROKER := bash scripts/sqs/start.sh
else ifneq ($(BROKER),embedded)
$(error BROKER=$(BROKER): use embedded, rabbitmq, activemq or sqs)
endif

.PHONY: install browser brokers start-broker demo screenshots test test-fast mutate migrate seed clean

$(INSTALLED): pyproject.toml
	@echo "Installing the pinned dependencies into $(VENV) (first use, or pyproject.toml changed): a minute or two..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -e '.[test]'
	touch $(INSTALLED)

install: $(INSTALLED)

# The browser tests need Debian's Chromium (the demo does not).
browser:
	@bash scripts/install_browser.sh

# The demo's broker, when it is one the project starts (BROKER=activemq or sqs); idempotent.
start-broker: install
	$(START_BROKER)

migrate: install start-broker
	$(BIN)/python manage.py migrate_all

seed: migrate
	$(BIN)/python manage.py seed_demo

demo: seed
	$(BIN)/python manage.py demo --host $(HOST) --port $(PORT)

# ActiveMQ and the SQS + SNS emulator, for the tests that run on every broker (idempotent). Without
# them (not root, no package registry) their tests skip with the reason, or fail in CI.
brokers: install
	-bash scripts/activemq/start.sh
	-EVENTSHOP_VENV=$(VENV) bash scripts/sqs/start.sh

test: install browser brokers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Refresh the docs' pictures (docs/screenshots/) from the browser tests; test runs leave them alone.
screenshots: install browser
	SCREENSHOT_DIR=docs/screenshots $(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# Unit tests only: no RabbitMQ, PostgreSQL or browser needed.
test-fast: install
	$(BIN)/python -m pytest -m "not integration and not browser" $(PYTEST_ARGS)

# Mutation testing of the guarantee code ([tool.mutmut] in pyproject.toml; docs/mutation-survivors.md):
# each mutant runs the fast tests that reach it. CPU-heavy, so niced; not part of CI.
# The guarantee code: consume loop, outbox and relay, retries, dead letters, the services' idempotent paths.
GUARANTEE_MUTANTS = 'messaging.consumer.*' 'messaging.outbox.*' 'messaging.retries.*' \
	'messaging.dead_letters.*' 'shipping.services.*' 'loyalty.services.*' 'shop.services.orders.*'
# Each adapter's ack, redelivery count and dead-letter paths (its reader, its delivery decoding, its
# retry copy); their contract tests run against the real brokers, so `make brokers` starts them first.
ADAPTER_MUTANTS = 'messaging.brokers.kombu_bus.x*KombuReader*' 'messaging.brokers.kombu_bus.x_retry_headers*' \
	'messaging.brokers.kombu_bus.x__routing_key*' 'messaging.brokers.kombu_bus.x__delivery*' \
	'messaging.brokers.kombu_bus.x_dead_queue*' 'messaging.brokers.rabbitmq.x*send_retry*' \
	'messaging.brokers.rabbitmq.x*subscriber_queue*' 'messaging.brokers.embedded.x*send_retry*' \
	'messaging.brokers.sqs.x*SqsReader*' 'messaging.brokers.sqs.x__delivery*' \
	'messaging.brokers.activemq.x*ActiveMQReader*' 'messaging.brokers.activemq.x__delivery*'
# `make mutate MUTANTS='messaging.outbox.*'` runs only the mutants matching the pattern.
MUTANTS ?= $(GUARANTEE_MUTANTS) $(ADAPTER_MUTANTS)
mutate: install brokers
	nice -n 19 $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf var mutants
