"""Tests for the embedded SQLite kombu transport (messaging.transport.sqlite).

Every test uses a real database file under tmp_path. Where a second process
matters (routing state, crashes, competing consumers) it is a real child
interpreter with its own kombu Connection.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import celery
import kombu
import pytest
from kombu import Consumer, Exchange, Producer, Queue
from kombu.exceptions import ChannelError

from messaging.transport import register_transport_alias

ROOT = Path(__file__).resolve().parents[2]

SHOP = Exchange('shop', type='topic')

register_transport_alias()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / 'broker.sqlite3'


@pytest.fixture
def url(db_path):
    # db_path is absolute, so this is the four-slash form.
    return f'eventshop-sqlite:///{db_path}'


def child_process(code, *args, **popen_kwargs):
    """Start ``code`` in a fresh interpreter with the transport registered."""
    prelude = (
        'from messaging.transport import register_transport_alias\n'
        'register_transport_alias()\n'
    )
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
    return subprocess.Popen(
        [sys.executable, '-c', prelude + textwrap.dedent(code), *args],
        cwd=ROOT, env=env, text=True, **popen_kwargs,
    )


def run_child(code, *args):
    child = child_process(code, *args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    stdout, stderr = child.communicate(timeout=30)
    return child.returncode, stdout, stderr


def publish(url, queue, *bodies):
    """Publish to the default exchange, i.e. straight into ``queue``."""
    with kombu.Connection(url) as conn:
        producer = Producer(conn)
        for body in bodies:
            producer.publish(body, routing_key=queue, serializer='json')


def get(conn, queue):
    return Queue(queue)(conn.default_channel).get()


def ready_count(conn, queue):
    declared = conn.default_channel.queue_declare(queue, passive=True)
    return declared.message_count


def stored_rows(db_path, queue):
    """Rows in the database, ready or claimed: what a restart would see."""
    db = sqlite3.connect(db_path)
    try:
        [(count,)] = db.execute(
            'SELECT COUNT(*) FROM message WHERE queue = ?', (queue,))
    finally:
        db.close()
    return count


# -- URL and connection -------------------------------------------------------

def test_url_with_three_slashes_is_relative_to_working_directory(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with kombu.Connection('eventshop-sqlite:///var/broker.sqlite3') as conn:
        conn.connect()
        assert conn.transport.database_path == (
            tmp_path / 'var' / 'broker.sqlite3')
    assert (tmp_path / 'var' / 'broker.sqlite3').is_file()


def test_url_with_four_slashes_is_absolute_and_parents_are_created(tmp_path):
    path = tmp_path / 'nested' / 'dirs' / 'broker.sqlite3'
    url = f'eventshop-sqlite:///{path}'
    assert url.startswith('eventshop-sqlite:////')
    with kombu.Connection(url) as conn:
        conn.connect()
        assert conn.transport.database_path == path
    assert path.is_file()


def test_url_without_a_path_is_rejected():
    with pytest.raises(ValueError, match='must name the database file'):
        kombu.Connection('eventshop-sqlite://').connect()


def test_connection_uses_wal_busy_timeout_and_fast_polling(url):
    with kombu.Connection(url) as conn:
        db = conn.default_channel.db()
        assert db.execute('PRAGMA journal_mode').fetchone() == ('wal',)
        assert db.execute('PRAGMA busy_timeout').fetchone() == (30000,)
        assert conn.transport.polling_interval == 0.1
    options = {'polling_interval': 0.5}
    with kombu.Connection(url, transport_options=options) as conn:
        assert conn.transport.polling_interval == 0.5


# -- routing ------------------------------------------------------------------

def test_topic_routing_uses_bindings_from_other_connections_and_processes(
        url):
    with kombu.Connection(url) as binder:
        channel = binder.default_channel
        Queue('A', SHOP, 'shop.purchase.confirmed.#')(channel).declare()
        Queue('B', SHOP, 'shop.#')(channel).declare()

    # A new Connection starts with empty in-memory broker state and never
    # declares 'shop': the exchange type and bindings must come from disk.
    with kombu.Connection(url) as publisher:
        Producer(publisher).publish(
            {'order': 42}, exchange='shop',
            routing_key='shop.purchase.confirmed', serializer='json')

    returncode, stdout, stderr = run_child('''
        import json, sys, kombu
        from kombu import Exchange, Queue
        with kombu.Connection(sys.argv[1]) as conn:
            queue = Queue('B', Exchange('shop', type='topic'), 'shop.#')
            message = queue(conn.default_channel).get()
            message.ack()
            print(json.dumps(message.payload))
    ''', url)
    assert returncode == 0, stderr
    assert json.loads(stdout) == {'order': 42}

    with kombu.Connection(url) as conn:
        message = get(conn, 'A')
        assert message is not None
        assert message.payload == {'order': 42}


@pytest.mark.parametrize('binding_key, routing_key, routed', [
    # '#' matches zero or more words.
    ('shop.purchase.confirmed.#', 'shop.purchase.confirmed', True),
    ('shop.purchase.confirmed.#', 'shop.purchase.confirmed.DE', True),
    ('shop.purchase.confirmed.#', 'shop.purchase.confirmedDE', False),
    ('#.DE', 'DE', True),
    ('shop.#.DE', 'shop.DE', True),
    # '*' matches exactly one word.
    ('*.purchase.*', 'shop.purchase.confirmed.DE', False),
    ('*.purchase.*', 'shop.purchase.confirmed', True),
    ('shop.*.DE', 'shop.DE', False),
])
def test_topic_matching_follows_amqp_semantics(
        url, binding_key, routing_key, routed):
    with kombu.Connection(url) as conn:
        Queue('q', SHOP, binding_key)(conn.default_channel).declare()
        Producer(conn).publish('x', exchange=SHOP, routing_key=routing_key)
        assert ready_count(conn, 'q') == int(routed)


def test_fanout_direct_and_default_exchange_routing(url):
    broadcast = Exchange('broadcast', type='fanout')
    orders = Exchange('orders', type='direct')
    with kombu.Connection(url) as binder:
        channel = binder.default_channel
        Queue('f1', broadcast)(channel).declare()
        Queue('f2', broadcast)(channel).declare()
        Queue('created', orders, 'created')(channel).declare()
        Queue('cancelled', orders, 'cancelled')(channel).declare()

    with kombu.Connection(url) as conn:
        producer = Producer(conn)
        producer.publish('all', exchange='broadcast', routing_key='any')
        producer.publish('new', exchange='orders', routing_key='created')
        producer.publish('plain', exchange='', routing_key='undeclared')
        counts = {
            queue: ready_count(conn, queue)
            for queue in ('f1', 'f2', 'created', 'cancelled', 'undeclared')
        }
    assert counts == {
        'f1': 1, 'f2': 1, 'created': 1, 'cancelled': 0, 'undeclared': 1,
    }


# -- delivery guarantees ------------------------------------------------------

def test_unacked_message_is_released_on_graceful_close(url, db_path):
    publish(url, 'q', 'hello')
    # The default 30 s visibility timeout cannot be what brings it back.
    with kombu.Connection(url) as conn:
        assert get(conn, 'q').payload == 'hello'

    with kombu.Connection(url) as conn:
        message = get(conn, 'q')
        assert message is not None
        assert message.payload == 'hello'
        assert message.delivery_info['redelivered'] is True
        assert message.headers['x-delivery-count'] == 1
        message.ack()
    # Released in place, not re-published as a copy.
    assert stored_rows(db_path, 'q') == 0


def test_message_of_a_killed_consumer_is_redelivered_after_timeout(url):
    publish(url, 'q', 'job')
    returncode, _, stderr = run_child('''
        import os, signal, sys, kombu
        from kombu import Queue
        conn = kombu.Connection(
            sys.argv[1], transport_options={'visibility_timeout': 1})
        message = Queue('q')(conn.default_channel).get()
        assert message.payload == 'job'
        assert message.headers['x-delivery-count'] == 0
        os.kill(os.getpid(), signal.SIGKILL)
    ''', url)
    assert returncode == -signal.SIGKILL, stderr

    options = {'visibility_timeout': 1}
    with kombu.Connection(url, transport_options=options) as conn:
        assert get(conn, 'q') is None  # still claimed by the dead process
        deadline = time.monotonic() + 3
        message = None
        while message is None and time.monotonic() < deadline:
            time.sleep(0.1)
            message = get(conn, 'q')
        assert message is not None
        assert message.payload == 'job'
        assert message.delivery_info['redelivered'] is True
        assert message.headers['x-delivery-count'] == 1
        message.ack()


def test_acked_message_is_not_redelivered(url, db_path):
    publish(url, 'q', 'done')
    options = {'visibility_timeout': 0.5}
    with kombu.Connection(url, transport_options=options) as conn:
        message = get(conn, 'q')
        assert message.delivery_info['redelivered'] is False
        message.ack()
        assert stored_rows(db_path, 'q') == 0
        time.sleep(0.6)
        assert get(conn, 'q') is None


def test_reject_with_requeue_redelivers_and_without_requeue_drops(
        url, db_path):
    publish(url, 'retry', 'again')
    publish(url, 'poison', 'drop')
    options = {'visibility_timeout': 0.5}
    with kombu.Connection(url, transport_options=options) as conn:
        get(conn, 'retry').requeue()
        message = get(conn, 'retry')  # immediately, not after the timeout
        assert message.payload == 'again'
        assert message.delivery_info['redelivered'] is True
        assert message.headers['x-delivery-count'] == 1
        message.ack()

        get(conn, 'poison').reject()
        assert stored_rows(db_path, 'poison') == 0
        time.sleep(0.6)
        assert get(conn, 'poison') is None


def test_competing_consumers_each_message_consumed_exactly_once(
        url, db_path, tmp_path):
    publish(url, 'work', *range(200))
    go = tmp_path / 'go'
    consumer_code = '''
        import json, random, socket, sys, time, kombu
        from pathlib import Path
        from kombu import Consumer, Queue

        url, go = sys.argv[1], Path(sys.argv[2])
        received = []

        def on_message(body, message):
            received.append([body, message.delivery_info['redelivered']])
            # A little random work, as real handlers do: it lets the other
            # consumer reach SQLite's write lock (a tight loop starves it)
            # and makes the two processes' claims land close together.
            time.sleep(random.uniform(0, 0.001))
            message.ack()

        with kombu.Connection(url) as conn:
            with Consumer(conn, [Queue('work')], callbacks=[on_message],
                          accept=['json']):
                print('ready', flush=True)
                while not go.exists():
                    time.sleep(0.01)
                while True:
                    try:
                        conn.drain_events(timeout=1)
                    except socket.timeout:
                        break
        print(json.dumps(received), flush=True)
    '''
    consumers = [
        child_process(consumer_code, url, str(go), stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    try:
        for consumer in consumers:
            assert consumer.stdout.readline().strip() == 'ready'
        go.touch()  # both are connected and waiting: start the race
        outputs = [consumer.communicate(timeout=30)[0]
                   for consumer in consumers]
    finally:
        for consumer in consumers:
            if consumer.poll() is None:
                consumer.kill()
    assert [consumer.returncode for consumer in consumers] == [0, 0]

    per_consumer = [json.loads(out) for out in outputs]
    assert all(per_consumer), 'one consumer got nothing: no race happened'
    received = [item for items in per_consumer for item in items]
    bodies = sorted(body for body, _ in received)
    assert bodies == list(range(200))
    assert not any(redelivered for _, redelivered in received)
    assert stored_rows(db_path, 'work') == 0


# -- queue management ---------------------------------------------------------

def test_size_and_purge_count_ready_messages_and_delete_removes_queue(
        url, db_path):
    orders = Exchange('orders', type='direct')
    with kombu.Connection(url) as conn:
        queue = Queue('q', orders, 'created')(conn.default_channel)
        queue.declare()
        producer = Producer(conn)
        for number in range(3):
            producer.publish(number, exchange=orders, routing_key='created')

        claimed = queue.get()
        assert ready_count(conn, 'q') == 2
        assert queue.purge() == 2
        assert stored_rows(db_path, 'q') == 1  # the claimed one survives
        claimed.requeue()
        assert ready_count(conn, 'q') == 1

        queue.delete()
        assert stored_rows(db_path, 'q') == 0
        producer.publish(9, exchange=orders, routing_key='created')
        with pytest.raises(ChannelError):
            conn.default_channel.queue_declare('q', passive=True)


def test_no_ack_consumer_deletes_on_fetch_and_auto_delete_queue_goes_away(
        url, db_path):
    events = Exchange('events', type='topic')
    queue = Queue('ephemeral', events, 'worker.#', auto_delete=True)
    received = []
    options = {'visibility_timeout': 0.3}
    with kombu.Connection(url, transport_options=options) as conn:
        with Consumer(conn, [queue], no_ack=True,
                      callbacks=[lambda body, message: received.append(body)]):
            Producer(conn).publish(
                'beat', exchange=events, routing_key='worker.heartbeat')
            conn.drain_events(timeout=2)
            assert received == ['beat']
            assert stored_rows(db_path, 'ephemeral') == 0
        # Cancelling the only consumer deletes the queue and its binding.
        with pytest.raises(ChannelError):
            conn.default_channel.queue_declare('ephemeral', passive=True)


# -- Celery -------------------------------------------------------------------

def test_celery_can_send_a_task_through_the_transport(url):
    app = celery.Celery('eventshop-test', broker=url, set_as_current=False)
    try:
        app.send_task('eventshop.ping', args=(1,))
        with app.connection() as conn:
            message = get(conn, 'celery')
    finally:
        app.close()
    assert message is not None
    assert message.headers['task'] == 'eventshop.ping'


def test_a_message_with_a_not_before_header_stays_invisible_until_then(tmp_path):
    from messaging.transport.sqlite import NOT_BEFORE_HEADER

    url = f"eventshop-sqlite:///{tmp_path / 'delay.sqlite3'}"
    with kombu.Connection(url) as connection:
        queue = Queue("delayed", durable=True)
        producer = connection.Producer()
        producer.publish({"n": 1}, exchange="", routing_key="delayed", declare=[queue],
                         headers={NOT_BEFORE_HEADER: time.time() + 1.0})
        simple = connection.SimpleQueue(queue)
        with pytest.raises(simple.Empty):
            simple.get(timeout=0.3)
        message = simple.get(timeout=3)
        assert message.payload == {"n": 1}
        message.ack()
        simple.close()


def test_an_event_no_binding_matches_goes_to_the_alternate_exchange_like_on_rabbitmq(tmp_path):
    url = f"eventshop-sqlite:///{tmp_path / 'alternate.sqlite3'}"
    with kombu.Connection(url) as connection:
        channel = connection.default_channel
        unrouted = Exchange("events.unrouted", type="fanout", durable=True)
        events = Exchange("events", type="topic", durable=True, arguments={"alternate-exchange": "events.unrouted"})
        unrouted(channel).declare()
        events(channel).declare()
        Queue("kept", exchange=unrouted, routing_key="")(channel).declare()
        Queue("orders", exchange=events, routing_key="order.#")(channel).declare()
        producer = Producer(channel)

        producer.publish({"n": 1}, exchange=events, routing_key="order.placed")
        producer.publish({"n": 2}, exchange=events, routing_key="warehouse.counted")

        assert channel.queue_declare("orders", passive=True).message_count == 1
        assert channel.queue_declare("kept", passive=True).message_count == 1
