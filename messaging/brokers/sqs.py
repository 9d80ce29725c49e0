"""Amazon SQS + SNS: an SNS topic per publishing service, each subscriber an SQS queue subscribed to them.

    sqs://[ACCESS_KEY:SECRET@]REGION[/]?endpoint=http://127.0.0.1:4566&namespace=xyz&fifo=1
          &visibility_timeout=30&max_receive_count=10&dead_poll_seconds=5

- REGION, the credentials and the endpoint may be left out: boto3 then reads AWS_REGION /
  AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or a profile, a role) and
  AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_SQS / _SNS), so `sqs://eu-west-1` runs on real AWS. A
  secret holding `/` or `+` must be percent-encoded. With an `endpoint` and no credentials anywhere,
  dummy ones are used (the local emulator, `scripts/sqs/start.sh`, accepts any).
- `namespace` prefixes every topic and queue name (tests isolate runs on one emulator).
- `fifo=1`: FIFO topics and FIFO queues; events with the same ordering key (message group) keep
  their order, and SNS/SQS drop a message id published twice within five minutes.
- `visibility_timeout` (seconds, default 30): how long a fetched, unsettled message stays hidden
  before SQS hands it out again (a crashed consumer's messages come back after it).
- `max_receive_count` (default QUEUE_DELIVERY_LIMIT): receives before SQS moves a message to the
  subscriber's dead-letter queue. `dead_poll_seconds` (default 5): how often `fetch` looks there.

Names: a routing key's first word is the service that publishes it, and each service has its own
topic: `shop.purchase.confirmed.us.large` -> topic `shop_events`, `shipping.shipment.created` ->
`shipping_events`, `loyalty.points.awarded` -> `loyalty_events` (an empty key: `shop_events`).
Subscriber `shipping.events` -> queue `shipping_events`, its DLQ `shipping_events_dead`; the
catch-all `shop_events_unrouted`. Dots become underscores (SNS and SQS allow letters, digits, `-`
and `_`); each name is prefixed `<namespace>-` and suffixed `.fifo` in FIFO mode.

Topology: `declare` creates every queue and subscribes each subscriber's queue, with raw message
delivery, to the topic of each binding's first word (a binding starting with `*` or `#`: to every
topic the declared subscriptions name, and the shop's), filtered by its bindings on that topic. The
catch-all is subscribed to every topic with the negation of that topic's bindings. `publish`
creates a topic on first use, subscribing the catch-all to it before the first message (`topic_arn`,
the one place a topic is made), so the events of a service nobody binds yet are kept, not lost.
Queues exist from `declare` on, so nothing published before a consumer's first poll is lost.

Routing: SNS has no topic patterns, so each message carries its routing key in message attributes
(the whole key, the key with a leading dot for suffix matching, its word count and its first one to
four words) and each binding pattern becomes a subscription filter policy with the same AMQP topic
semantics (`routing_filter`); several bindings are OR-ed. Our headers travel as one JSON attribute,
so a message uses at most 10 attributes, the SQS limit.

Retries use SQS natively: `retry_later` hides the message for the delay (ChangeMessageVisibility);
SQS counts every receive (ApproximateReceiveCount), so a delivery's `attempt` is that count and
no attempt header is added.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from messaging.brokers.base import (
    BrokerConfigurationError,
    BrokerError,
    Capabilities,
    Delivery,
    EventBus,
    OutgoingMessage,
    PublishResult,
    QueueDepth,
    SubscriptionReader,
)
from messaging.events import EXCHANGE_NAME
from messaging.topology import QUEUE_DELIVERY_LIMIT

UNROUTED_QUEUE_NAME = f"{EXCHANGE_NAME}.unrouted"
SHOP_SERVICE = EXCHANGE_NAME.removesuffix(".events")  # the shop's topic, `shop.events`
DEAD_REASON = "delivery_limit"

# Message attributes (SQS delivers at most 10 per message).
ATTR_CONTENT_TYPE = "content_type"
ATTR_HEADERS = "headers"  # every header, as one JSON object
ATTR_ROUTING_KEY = "routing_key"
ATTR_KEY_END = "routing_key_end"  # "." + key: a suffix rule matches the last words, even a one-word key
ATTR_KEY_WORDS = "routing_key_words"  # Number
PREFIX_DEPTH = 4  # routing_key_1..4: the key's first N words, NO_WORDS when it has fewer
ATTR_BODY_ENCODING = "body_encoding"  # "base64", only for a body that is not text SQS accepts
NO_WORDS = "~"

BATCH_ENTRIES = 10  # PublishBatch, SendMessageBatch, DeleteMessageBatch
BATCH_BYTES = 240_000  # under the 256 KiB a whole batch may carry
MAX_WAIT_SECONDS = 20  # SQS long polling
MAX_VISIBILITY_SECONDS = 43_200
# Characters SQS accepts in a message body; anything else travels base64-encoded.
SQS_TEXT = re.compile("^[\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
# MessageGroupId / MessageDeduplicationId: at most 128 of these.
FIFO_ID = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$")


# --- routing: AMQP topic patterns as SNS filter policies ------------------------------------------


def routing_attributes(routing_key: str) -> dict[str, dict]:
    """The attributes a binding's filter policy looks at."""
    words = routing_key.split(".") if routing_key else []
    attributes = {
        ATTR_KEY_END: _string(f".{routing_key}"),
        ATTR_KEY_WORDS: {"DataType": "Number", "StringValue": str(len(words))},
    }
    if routing_key:
        attributes[ATTR_ROUTING_KEY] = _string(routing_key)
    for depth in range(1, PREFIX_DEPTH + 1):
        prefix = ".".join(words[:depth]) if len(words) >= depth else NO_WORDS
        attributes[f"routing_key_{depth}"] = _string(prefix)
    return attributes


def _string(value: str) -> dict:
    return {"DataType": "String", "StringValue": value}


def binding_conditions(pattern: str) -> dict[str, list] | None:
    """One AMQP topic binding (`*` one word, `#` zero or more) as the conditions of a filter policy
    (all must hold), or None for a pattern that matches every key. A pattern whose literal words sit
    between wildcards on both sides (`a.*.b.*`, `#.b.#`) has no exact filter-policy form."""
    words = pattern.split(".")
    wildcard_at = [index for index, word in enumerate(words) if word in ("*", "#")]
    if not wildcard_at:
        return {ATTR_ROUTING_KEY: [pattern]}
    head, tail = words[:wildcard_at[0]], words[wildcard_at[-1] + 1:]
    middle = words[wildcard_at[0]:wildcard_at[-1] + 1]
    if any(word not in ("*", "#") for word in middle):
        raise BrokerConfigurationError(
            f"binding {pattern!r}: SNS filter policies cannot match literal words between wildcards;"
            " bind a pattern whose literal words lead or trail it")
    conditions: dict[str, list] = {}
    fixed_words = len(words) - middle.count("#")
    if "#" not in middle:
        conditions[ATTR_KEY_WORDS] = [{"numeric": ["=", fixed_words]}]
    elif "*" in middle or (head and tail):
        # Without it `a.#.a` would take `a`: the head and the tail may not overlap.
        conditions[ATTR_KEY_WORDS] = [{"numeric": [">=", fixed_words]}]
    # (`a.b.#` and `#.b` need no count: their prefix or suffix has the words already.)
    if head:
        prefix = ".".join(head)
        if len(head) <= PREFIX_DEPTH:
            conditions[f"routing_key_{len(head)}"] = [prefix]
        else:
            conditions[ATTR_ROUTING_KEY] = [prefix, {"prefix": f"{prefix}."}]
    if tail:
        conditions[ATTR_KEY_END] = [{"suffix": "." + ".".join(tail)}]
    return conditions or None


def routing_filter(patterns: Iterable[str]) -> dict | None:
    """The filter policy of a subscription bound with `patterns` (OR), or None: it takes everything."""
    alternatives = []
    for pattern in dict.fromkeys(patterns):
        conditions = binding_conditions(pattern)
        if conditions is None:
            return None
        alternatives.append(conditions)
    if not alternatives:
        return {ATTR_KEY_WORDS: [{"numeric": ["<", 0]}]}  # bound to nothing: takes nothing
    # Single-condition alternatives on one attribute merge into one list (OR), the simplest policy.
    merged: dict[str, list] = {}
    rest = []
    for conditions in alternatives:
        if len(conditions) == 1:
            (name, rules), = conditions.items()
            merged.setdefault(name, []).extend(rule for rule in rules if rule not in merged.get(name, []))
        else:
            rest.append(conditions)
    branches = [{name: rules} for name, rules in merged.items()] + rest
    return branches[0] if len(branches) == 1 else {"$or": branches}


def unrouted_filter(patterns: Iterable[str]) -> tuple[dict | None, tuple[str, ...]]:
    """The filter policy of the catch-all queue: the negation of every binding, and the bindings it
    could not negate (with `*` or a tail, not covered by a `<words>.#` binding): an event only
    such a binding takes reaches the catch-all too, kept twice rather than lost."""
    patterns = tuple(dict.fromkeys(patterns))
    excluded: dict[str, list[str]] = {}  # attribute -> values it must not have
    loose = []
    for pattern in patterns:
        conditions = binding_conditions(pattern)
        if conditions is None:
            return {ATTR_KEY_WORDS: [{"numeric": ["<", 0]}]}, ()  # everything is routed
        if len(conditions) == 1:
            (name, rules), = conditions.items()
            if name.startswith("routing_key_") and name[-1].isdigit() or name == ATTR_ROUTING_KEY and len(rules) == 1:
                excluded.setdefault(name, []).append(rules[0])
                continue
        loose.append(pattern)
    prefixes = [value.split(".") for name, values in excluded.items() if name != ATTR_ROUTING_KEY for value in values]
    uncovered = tuple(
        pattern for pattern in loose
        if not any(pattern.split(".")[:len(prefix)] == prefix for prefix in prefixes)
    )
    if not excluded:
        return None, uncovered
    policy = {name: [{"anything-but": values}] for name, values in excluded.items()}
    if ATTR_ROUTING_KEY in policy:
        # An empty key has no routing_key attribute (SQS refuses empty values); anything-but needs one.
        policy[ATTR_ROUTING_KEY].insert(0, {"exists": False})
    return policy, uncovered


def topic_service(routing_key: str) -> str:
    """The publishing service whose topic carries `routing_key` (or takes a binding): its first word.
    An empty key goes to the shop's topic."""
    return routing_key.split(".", 1)[0] or SHOP_SERVICE


def topic_match(pattern: str, routing_key: str) -> bool:
    """AMQP topic-exchange matching, the reference the filter policies are tested against."""

    def match(pattern_words: list[str], key_words: list[str]) -> bool:
        if not pattern_words:
            return not key_words
        first, rest = pattern_words[0], pattern_words[1:]
        if first == "#":
            return any(match(rest, key_words[skip:]) for skip in range(len(key_words) + 1))
        if not key_words:
            return False
        return (first == "*" or first == key_words[0]) and match(rest, key_words[1:])

    return match(pattern.split("."), routing_key.split(".") if routing_key else [])


# --- the bus ----------------------------------------------------------------------------------------


class _Options:
    """What a `sqs://` URL says."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme.lower() != "sqs":
            raise BrokerConfigurationError(f"{EventBus.describe_url(url)!r} is not an sqs:// URL")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "namespace", "fifo", "visibility_timeout", "max_receive_count",
                                "dead_poll_seconds"}
        if unknown:
            raise BrokerConfigurationError(f"BROKER_URL: unknown sqs:// option(s) {', '.join(sorted(unknown))}")
        self.region = parts.hostname or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not self.region:
            raise BrokerConfigurationError("BROKER_URL: sqs://REGION, or set AWS_REGION")
        self.access_key = unquote(parts.username) if parts.username else None
        self.secret_key = unquote(parts.password) if parts.password else None
        self.endpoint = query.get("endpoint") or None
        self.namespace = query.get("namespace", "")
        if self.namespace and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", self.namespace):
            raise BrokerConfigurationError("BROKER_URL: namespace takes up to 40 letters, digits, '-' or '_'")
        self.fifo = query.get("fifo", "0").lower() in {"1", "true", "yes"}
        try:
            self.visibility_timeout = int(query.get("visibility_timeout", 30))
            self.max_receive_count = int(query.get("max_receive_count", QUEUE_DELIVERY_LIMIT))
            self.dead_poll_seconds = float(query.get("dead_poll_seconds", 5))
        except ValueError as error:
            raise BrokerConfigurationError(f"BROKER_URL: {error}") from None

    def name(self, ours: str) -> str:
        """Our name (`shipping.events`) as an SNS/SQS name."""
        name = re.sub(r"[^A-Za-z0-9_-]", "_", ours)
        if self.namespace:
            name = f"{self.namespace}-{name}"
        return f"{name}.fifo" if self.fifo else name

    def topic_name_pattern(self) -> str:
        """Every topic name `name(f"{service}.events")` gives, as an ArnLike pattern."""
        prefix = f"{self.namespace}-" if self.namespace else ""
        return f"{prefix}*_events.fifo" if self.fifo else f"{prefix}*_events"


class SqsBus(EventBus):
    capabilities = Capabilities(
        name="Amazon SQS + SNS",
        publish_confirmation="SNS answers each Publish/PublishBatch entry with a message id once stored.",
        pub_sub=("One SNS topic per publishing service (the routing key's first word: shop_events, shipping_events, "
                 "...); each subscriber's SQS queue, created at declare, is subscribed with raw message delivery "
                 "to the topics its bindings name."),
        pattern_routing=("Subscription filter policies on message attributes carrying the routing key; AMQP "
                         "patterns translate exactly unless literal words sit between wildcards (refused at declare)."),
        delivery_count="SQS counts every receive (ApproximateReceiveCount), handled failures and crashes alike.",
        delivery_limit=(f"The redrive policy's maxReceiveCount ({QUEUE_DELIVERY_LIMIT} receives, retries included) "
                        "moves a message to the subscriber's DLQ."),
        dead_letters="Each subscriber queue redrives to its own DLQ; the consumer drains it every few seconds.",
        delayed_delivery=("Native: a retried message stays invisible for its delay (ChangeMessageVisibility, "
                          "at most 12 h); on FIFO queues it holds up its message group meanwhile."),
        per_key_ordering="None on standard queues; with fifo=1, per message group (the ordering key).",
        unrouted_events=("A catch-all queue subscribed to every topic (a new topic before its first message), "
                         "filtered with the negation of that topic's bindings; an event only a `*` or tail pattern "
                         "takes (no `<words>.#` binding covers it) reaches it too."),
        priorities="None: SQS has no message priorities.",
        high_availability="Managed by AWS: queues and topics are replicated across availability zones.",
        consumer_count=False,
    )

    def __init__(self, url: str, *, connect_timeout: float = 5.0):
        import boto3
        from botocore.config import Config

        self.url = url
        self.options = _Options(url)
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=MAX_WAIT_SECONDS + 10,  # longer than a long poll
            retries={"mode": "standard", "max_attempts": 3},
        )
        session = boto3.session.Session(
            aws_access_key_id=self.options.access_key,
            aws_secret_access_key=self.options.secret_key,
            region_name=self.options.region,
        )
        credentials = None
        emulated = self.options.endpoint or os.environ.get("AWS_ENDPOINT_URL")
        if emulated and session.get_credentials() is None:
            credentials = {"aws_access_key_id": "eventshop", "aws_secret_access_key": "eventshop"}
        with self._errors("connect"):
            self.sns = session.client("sns", endpoint_url=self.options.endpoint, config=config, **(credentials or {}))
            self.sqs = session.client("sqs", endpoint_url=self.options.endpoint, config=config, **(credentials or {}))
        self._queue_urls: dict[str, str] = {}
        self._topic_arns: dict[str, str] = {}  # topic name -> ARN
        self._unrouted_arn: str | None = None
        self._unrouted_policies: dict[str, dict | None] = {}  # topic name -> the catch-all's filter, from declare
        self._single_publish = False  # PublishBatch not offered: Publish each
        self.check()

    # -- plumbing

    def _errors(self, doing: str):
        return _wrap_errors(f"SQS/SNS ({EventBus.describe_url(self.url)}): {doing}")

    def check(self) -> None:
        with self._errors("not answering"):
            self.sqs.list_queues(MaxResults=1)
            self.sns.list_topics()

    def topic_arn(self, service: str = SHOP_SERVICE) -> str:
        """The ARN of `service`'s topic, created on first use (and cached) with the catch-all queue
        subscribed to it before anything is published there: the one place a topic is made, so an
        event of a service no subscriber has heard of yet still reaches the catch-all."""
        name = self.topic_name(service)
        if name not in self._topic_arns:
            attributes = {"FifoTopic": "true"} if self.options.fifo else {}
            with self._errors(f"create topic {name}"):
                # Idempotent: returns the ARN of the topic when it exists.
                arn = self.sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
                unrouted_arn = self._unrouted_queue_arn()
                # Only if missing: a declare (here or in another process) owns the catch-all's filter
                # for the topics its bindings name; where none does, it takes everything.
                if not self._subscriptions({unrouted_arn}, topic_arn=arn):
                    self._subscribe(arn, unrouted_arn, self._unrouted_policies.get(name), None)
            self._topic_arns[name] = arn
        return self._topic_arns[name]

    def topic_name(self, service: str) -> str:
        """The SNS name of a publishing service's topic: `shipping` -> `shipping_events`."""
        return self.options.name(f"{service}.events")

    def queue_url(self, queue_name: str) -> str | None:
        """The URL of one of our queues, or None if it does not exist."""
        if queue_name not in self._queue_urls:
            with self._errors(f"look up {queue_name}"):
                try:
                    response = self.sqs.get_queue_url(QueueName=self.options.name(queue_name))
                except self.sqs.exceptions.QueueDoesNotExist:
                    return None
            self._queue_urls[queue_name] = response["QueueUrl"]
        return self._queue_urls[queue_name]

    def _create_queue(self, queue_name: str, attributes: dict[str, str], *, from_topics: bool = False) -> str:
        """Create or update one queue; its ARN. `from_topics`: our topics may send to it."""
        created = {"FifoQueue": "true"} if self.options.fifo else {}
        url = self.sqs.create_queue(QueueName=self.options.name(queue_name), Attributes=created)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if from_topics:
            # Any topic of ours in this account and region, whichever service's: the catch-all gets
            # new topics at publish time, and a policy naming topics one by one would race.
            partition, region, account = arn.split(":")[1], arn.split(":")[3], arn.split(":")[4]
            topics = f"arn:{partition}:sns:{region}:{account}:{self.options.topic_name_pattern()}"
            attributes = {**attributes, "Policy": json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
                    "Resource": arn, "Condition": {"ArnLike": {"aws:SourceArn": topics}},
                }],
            })}
        # Set apart from creating: CreateQueue refuses an existing queue with other attributes.
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "1209600", **attributes})
        self._queue_urls[queue_name] = url
        return arn

    def _unrouted_queue_arn(self) -> str:
        if self._unrouted_arn is None:
            self._unrouted_arn = self._create_queue(UNROUTED_QUEUE_NAME, {}, from_topics=True)
        return self._unrouted_arn

    def _subscriptions(self, queue_arns: set[str], *, topic_arn: str | None = None) -> dict[tuple[str, str], str]:
        """(topic ARN, queue ARN) -> subscription ARN, for these queues, on one topic or on any."""
        found = {}
        if topic_arn is None:
            pages = self.sns.get_paginator("list_subscriptions").paginate()
        else:
            pages = self.sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
        for page in pages:
            for subscription in page["Subscriptions"]:
                if (subscription["Protocol"] == "sqs" and subscription["Endpoint"] in queue_arns
                        and subscription["SubscriptionArn"].startswith("arn:")):
                    found[(subscription["TopicArn"], subscription["Endpoint"])] = subscription["SubscriptionArn"]
        return found

    def _subscribe(self, topic_arn: str, queue_arn: str, filter_policy: dict | None,
                   subscription_arn: str | None) -> None:
        """Subscribe a queue to a topic with raw message delivery and `filter_policy`, or bring its
        existing subscription (`subscription_arn`) in line."""
        policy = json.dumps(filter_policy, sort_keys=True) if filter_policy is not None else ""
        if subscription_arn is None:
            attributes = {"RawMessageDelivery": "true"}
            if policy:
                attributes["FilterPolicy"] = policy
            self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes,
                               ReturnSubscriptionArn=True)
            return
        current = self.sns.get_subscription_attributes(SubscriptionArn=subscription_arn)["Attributes"]
        if current.get("RawMessageDelivery", "").lower() != "true":
            self.sns.set_subscription_attributes(SubscriptionArn=subscription_arn, AttributeName="RawMessageDelivery",
                                                 AttributeValue="true")
        current_policy = current.get("FilterPolicy") or ""
        if (json.loads(current_policy) if current_policy else None) != filter_policy:
            self.sns.set_subscription_attributes(SubscriptionArn=subscription_arn, AttributeName="FilterPolicy",
                                                 AttributeValue=policy or "{}")

    # -- the port

    def declare(self, subscriptions: Iterable) -> None:
        subscriptions = list(subscriptions)
        # Each binding goes to the topic of its first word, the publishing service. The shop's topic
        # is always there. A binding whose first word is `*` or `#` (none of ours) goes to every topic
        # the declared subscriptions name: a service no binding names gets no such subscriber, its
        # events only reach the catch-all.
        services = {self.topic_name(SHOP_SERVICE): SHOP_SERVICE}
        for subscription in subscriptions:
            for pattern in subscription.bindings():
                service = topic_service(pattern)
                if service not in ("*", "#"):
                    services.setdefault(self.topic_name(service), service)
        bindings: dict[str, dict[str, list[str]]] = {name: {} for name in services}  # topic -> queue -> patterns
        for subscription in subscriptions:
            for pattern in subscription.bindings():
                service = topic_service(pattern)
                for name in services if service in ("*", "#") else [self.topic_name(service)]:
                    bindings[name].setdefault(subscription.queue_name, []).append(pattern)
        # On each topic the catch-all takes what none of that topic's bindings takes.
        self._unrouted_policies = {
            name: unrouted_filter(pattern for patterns in on_topic.values() for pattern in patterns)[0]
            for name, on_topic in bindings.items()
        }
        with self._errors("declare"):
            queue_arns = {}
            for subscription in subscriptions:
                dead_arn = self._create_queue(subscription.dead_queue_name, {})
                queue_arns[subscription.queue_name] = self._create_queue(subscription.queue_name, {
                    "VisibilityTimeout": str(self.options.visibility_timeout),
                    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn,
                                                 "maxReceiveCount": self.options.max_receive_count}),
                }, from_topics=True)
            self._unrouted_arn = None  # created again: declare brings its attributes in line
            unrouted_arn = self._unrouted_queue_arn()
            topic_arns = {name: self.topic_arn(service) for name, service in services.items()}
            wanted = {}  # (topic ARN, queue ARN) -> filter policy
            for name, on_topic in bindings.items():
                for queue_name, patterns in on_topic.items():
                    wanted[(topic_arns[name], queue_arns[queue_name])] = routing_filter(patterns)
                wanted[(topic_arns[name], unrouted_arn)] = self._unrouted_policies[name]
            existing = self._subscriptions({*queue_arns.values(), unrouted_arn})
            for (topic_arn, queue_arn), filter_policy in wanted.items():
                self._subscribe(topic_arn, queue_arn, filter_policy, existing.get((topic_arn, queue_arn)))
            for (topic_arn, queue_arn), subscription_arn in existing.items():
                if (topic_arn, queue_arn) in wanted:
                    continue
                if queue_arn == unrouted_arn:
                    # A topic no declared binding names: the catch-all stays on it and takes everything.
                    self._subscribe(topic_arn, queue_arn, None, subscription_arn)
                else:  # a binding dropped since: its subscriber no longer takes that topic's events
                    self.sns.unsubscribe(SubscriptionArn=subscription_arn)

    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishResult:
        """Each message goes to the topic of its routing key's first word. Consecutive messages of
        one topic share PublishBatch calls (10 at most), so messages go out in their order and the
        ids come back confirmed in that order, up to the first failure."""
        confirmed: list[str] = []
        try:
            for service, batch in _topic_batches(messages):
                topic_arn = self.topic_arn(service)
                if self._single_publish:
                    for message in batch:
                        with self._errors("publish"):
                            self.sns.publish(TopicArn=topic_arn, **self._entry(message, body_key="Message"))
                        confirmed.append(message.message_id)
                    continue
                entries = [{"Id": str(index), **self._entry(message, body_key="Message")}
                           for index, message in enumerate(batch)]
                try:
                    with self._errors("publish"):
                        response = self.sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
                except BrokerError as error:
                    if _error_code(error) not in {"InvalidAction", "UnknownOperation", "NotImplemented"}:
                        raise
                    self._single_publish = True
                    return _merge(PublishResult(tuple(confirmed)), self.publish(messages[len(confirmed):]))
                error = _batch_outcome(batch, response, confirmed)
                if error is not None:
                    return PublishResult(tuple(confirmed), error)
        except BrokerError as error:
            return PublishResult(tuple(confirmed), error)
        return PublishResult(tuple(confirmed))

    def send_to_queue(self, queue_name: str, messages: Sequence[OutgoingMessage]) -> PublishResult:
        confirmed: list[str] = []
        try:
            url = self.queue_url(queue_name)
            if url is None:
                raise BrokerError(f"SQS: no queue {queue_name!r} ({self.options.name(queue_name)}); declare it first")
            for batch in _batches(messages):
                entries = [{"Id": str(index), **self._entry(message, body_key="MessageBody")}
                           for index, message in enumerate(batch)]
                with self._errors(f"send to {queue_name}"):
                    response = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
                error = _batch_outcome(batch, response, confirmed)
                if error is not None:
                    return PublishResult(tuple(confirmed), error)
        except BrokerError as error:
            return PublishResult(tuple(confirmed), error)
        return PublishResult(tuple(confirmed))

    def _entry(self, message: OutgoingMessage, *, body_key: str) -> dict:
        body, encoding = _encode_body(message.body)
        attributes = routing_attributes(message.routing_key)
        attributes[ATTR_HEADERS] = _string(json.dumps(message.headers, default=str, separators=(",", ":")))
        if message.content_type:
            attributes[ATTR_CONTENT_TYPE] = _string(message.content_type)
        if encoding:
            attributes[ATTR_BODY_ENCODING] = _string(encoding)
        entry = {body_key: body, "MessageAttributes": attributes}
        if self.options.fifo:
            entry["MessageGroupId"] = _fifo_id(message.ordering_key or message.message_id)
            entry["MessageDeduplicationId"] = _fifo_id(message.message_id)
        return entry

    def subscribe(self, subscription, *, prefetch: int) -> SqsReader:
        main_url = self.queue_url(subscription.queue_name)
        dead_url = self.queue_url(subscription.dead_queue_name)
        if main_url is None or dead_url is None:
            raise BrokerError(f"SQS: the queues of {subscription.name!r} do not exist; declare them first")
        return SqsReader(self, main_url, dead_url, prefetch=prefetch)

    def queue_depths(self, queue_names: Sequence[str]) -> list[QueueDepth]:
        depths = []
        for name in queue_names:
            url = self.queue_url(name)
            if url is None:
                depths.append(QueueDepth(queue=name, ready=None, consumers=None))
                continue
            with self._errors(f"depth of {name}"):
                try:
                    attributes = self.sqs.get_queue_attributes(
                        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
                except self.sqs.exceptions.QueueDoesNotExist:
                    self._queue_urls.pop(name, None)
                    depths.append(QueueDepth(queue=name, ready=None, consumers=None))
                    continue
            depths.append(QueueDepth(queue=name, ready=int(attributes["ApproximateNumberOfMessages"]), consumers=None))
        return depths

    def close(self) -> None:
        for client in (getattr(self, "sns", None), getattr(self, "sqs", None)):
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing is best effort: the connection may be gone already
                    pass


class SqsReader(SubscriptionReader):
    """One subscriber's queue and its DLQ. SQS is pull-based: paused, it just receives nothing."""

    def __init__(self, bus: SqsBus, queue_url: str, dead_queue_url: str, *, prefetch: int):
        self.bus = bus
        self.queue_url = queue_url
        self.dead_queue_url = dead_queue_url
        self.prefetch = prefetch
        self._next_dead_poll = 0.0
        self.paused = False

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self.paused:
            time.sleep(timeout)
            return []
        count = max(1, min(max_messages, BATCH_ENTRIES))
        now = time.monotonic()
        if now >= self._next_dead_poll:
            self._next_dead_poll = now + self.bus.options.dead_poll_seconds
            dead = self._receive(self.dead_queue_url, count, wait_seconds=0, dead=True)
            if dead:
                return dead
        wait_seconds = min(MAX_WAIT_SECONDS, max(0, int(timeout + 0.5)))
        return self._receive(self.queue_url, count, wait_seconds=wait_seconds, dead=False)

    def _receive(self, queue_url: str, count: int, *, wait_seconds: int, dead: bool) -> list[Delivery]:
        with self.bus._errors("receive"):
            response = self.bus.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"], MessageAttributeNames=["All"],
            )
        return [_delivery(message, queue_url, dead=dead) for message in response.get("Messages", [])]

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        by_queue: dict[str, list[str]] = {}
        for delivery in deliveries:
            queue_url, receipt_handle = delivery.handle
            by_queue.setdefault(queue_url, []).append(receipt_handle)
        for queue_url, handles in by_queue.items():
            for start in range(0, len(handles), BATCH_ENTRIES):
                entries = [{"Id": str(index), "ReceiptHandle": handle}
                           for index, handle in enumerate(handles[start:start + BATCH_ENTRIES])]
                with self.bus._errors("ack"):
                    response = self.bus.sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
                if response.get("Failed"):
                    failure = response["Failed"][0]
                    raise BrokerError(f"SQS: delete failed for {len(response['Failed'])} message(s):"
                                      f" {failure.get('Code')}: {failure.get('Message')}")

    def retry_later(self, delivery: Delivery, *, attempt: int, delay_seconds: float) -> None:
        # SQS counts the next receive itself: `attempt` needs no header here.
        self._hide(delivery, min(MAX_VISIBILITY_SECONDS, max(0, math.ceil(delay_seconds))))

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._hide(delivery, 0)

    def _hide(self, delivery: Delivery, seconds: int) -> None:
        queue_url, receipt_handle = delivery.handle
        with self.bus._errors("change visibility"):
            self.bus.sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle,
                                                   VisibilityTimeout=seconds)

    def close(self) -> None:
        """Nothing to release: unsettled messages come back after their visibility timeout."""


# --- helpers ----------------------------------------------------------------------------------------


class _wrap_errors:
    """Every botocore failure (unreachable endpoint, throttling, a refused request) as BrokerError."""

    def __init__(self, doing: str):
        self.doing = doing

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        from botocore.exceptions import BotoCoreError, ClientError

        if error is None or isinstance(error, BrokerError):
            return False
        if isinstance(error, (BotoCoreError, ClientError, OSError)):
            raise BrokerError(f"{self.doing}: {error}") from error
        return False


def _error_code(error: BaseException) -> str:
    cause = error.__cause__
    response = getattr(cause, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


def _batches(messages: Sequence[OutgoingMessage]) -> Iterable[list[OutgoingMessage]]:
    batch: list[OutgoingMessage] = []
    size = 0
    for message in messages:
        message_size = len(message.body) * 4 // 3 + 2048  # base64 at worst, plus attributes
        if batch and (len(batch) == BATCH_ENTRIES or size + message_size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += message_size
    if batch:
        yield batch


def _topic_batches(messages: Sequence[OutgoingMessage]) -> Iterable[tuple[str, list[OutgoingMessage]]]:
    """(service, batch) for each run of consecutive messages bound for one topic, cut into batches."""
    run: list[OutgoingMessage] = []
    for message in messages:
        if run and topic_service(message.routing_key) != topic_service(run[0].routing_key):
            yield from ((topic_service(run[0].routing_key), batch) for batch in _batches(run))
            run = []
        run.append(message)
    if run:
        yield from ((topic_service(run[0].routing_key), batch) for batch in _batches(run))


def _batch_outcome(batch: list[OutgoingMessage], response: dict, confirmed: list[str]) -> BrokerError | None:
    """Append the confirmed ids in order; the first failure as an error, if any."""
    succeeded = {entry["Id"] for entry in response.get("Successful", [])}
    for index, message in enumerate(batch):
        if str(index) in succeeded:
            confirmed.append(message.message_id)
    failed = response.get("Failed", [])
    if not failed:
        return None
    failure = failed[0]
    return BrokerError(f"SQS/SNS refused {len(failed)} of {len(batch)} message(s), e.g."
                       f" {batch[int(failure['Id'])].message_id}: {failure.get('Code')}: {failure.get('Message')}")


def _merge(first: PublishResult, second: PublishResult) -> PublishResult:
    return PublishResult(first.confirmed + second.confirmed, second.error)


def _encode_body(body: bytes) -> tuple[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text and SQS_TEXT.match(text):
        return text, ""
    return base64.b64encode(body).decode("ascii"), "base64"


def _fifo_id(value: str) -> str:
    return value if FIFO_ID.match(value) else hashlib.sha256(value.encode()).hexdigest()


def _delivery(message: dict, queue_url: str, *, dead: bool) -> Delivery:
    attributes = {name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()}
    body = message.get("Body", "")
    data = base64.b64decode(body) if attributes.get(ATTR_BODY_ENCODING) == "base64" else body.encode("utf-8")
    try:
        headers = json.loads(attributes.get(ATTR_HEADERS) or "{}")
    except ValueError:
        headers = {}
    receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    return Delivery(
        body=data,
        content_type=attributes.get(ATTR_CONTENT_TYPE, ""),
        routing_key=attributes.get(ATTR_ROUTING_KEY, ""),
        headers=headers if isinstance(headers, dict) else {},
        redeliveries=max(0, receive_count - 1),
        broker_dead_reason=DEAD_REASON if dead else "",
        handle=(queue_url, message["ReceiptHandle"]),
    )
