"""The message broker, the outbox relay and the consumers."""
from .env import env_bool, env_float, env_int, env_str

# Embedded default: a SQLite file acting as the broker (messaging/transport/sqlite.py).
# The scheme picks the adapter (messaging/brokers/): amqp:// RabbitMQ, stomp://host:61613 ActiveMQ,
# sqs://region?endpoint=... Amazon SQS + SNS (or moto's emulator).
BROKER_URL = env_str("BROKER_URL", "eventshop-sqlite:///var/broker.sqlite3")
# A relay or consumer that cannot reach the broker this long after it starts exits with one line
# naming BROKER_URL; once connected, it waits out any outage and reconnects.
BROKER_START_WAIT_SECONDS = env_float("BROKER_START_WAIT_SECONDS", 10.0)
# Embedded broker only: a message taken but not acked (its consumer died) is redelivered after this.
BROKER_VISIBILITY_TIMEOUT_SECONDS = env_float("BROKER_VISIBILITY_TIMEOUT_SECONDS", 30.0)

# The relay publishes promptly after commit and sweeps rows left unsent this often.
OUTBOX_RELAY_SWEEP_SECONDS = env_float("OUTBOX_RELAY_SWEEP_SECONDS", 1.0)
# A row younger than this is left to the process that wrote it (it publishes on commit).
OUTBOX_RELAY_GRACE_SECONDS = env_float("OUTBOX_RELAY_GRACE_SECONDS", 2.0)
OUTBOX_RELAY_BATCH_SIZE = env_int("OUTBOX_RELAY_BATCH_SIZE", 200)
# Publish from the writing process right after commit (the relay's sweep is the safety net).
OUTBOX_PUBLISH_ON_COMMIT = env_bool("OUTBOX_PUBLISH_ON_COMMIT", True)

# A message bigger than this is refused by the publisher and dead-lettered by a consumer.
MESSAGE_MAX_BYTES = env_int("MESSAGE_MAX_BYTES", 64 * 1024)
# How many delivery attempts a transient failure gets before the message is dead-lettered.
CONSUMER_MAX_ATTEMPTS = env_int("CONSUMER_MAX_ATTEMPTS", 5)
CONSUMER_RETRY_BASE_SECONDS = env_float("CONSUMER_RETRY_BASE_SECONDS", 1.0)
CONSUMER_RETRY_MAX_SECONDS = env_float("CONSUMER_RETRY_MAX_SECONDS", 60.0)

# The relay samples queue depths, backlog and rates this often, for the operations charts.
METRICS_SAMPLE_SECONDS = env_float("METRICS_SAMPLE_SECONDS", 2.0)
