"""Embedded SQLite broker for kombu and Celery, with SQS-like redelivery.

Eventshop's demo must run with no broker installed, and its consumers rely on
at-least-once delivery: a message taken by a process that dies before
acknowledging it has to come back. kombu's own ``sqlalchemy`` transport does
not give that: it marks a row invisible when it is fetched and nothing ever
makes it visible again, so a ``kill -9`` between fetch and ack loses the
message for good.

This transport works like Amazon SQS instead. Fetching a message *claims* it
for ``visibility_timeout`` seconds (transport option, default 30); an ack
deletes the row, a requeue or a graceful channel close releases it at once,
and a claim that is never settled simply expires, so the message is delivered
again with ``delivery_info['redelivered']`` set and an ``x-delivery-count``
header (the header RabbitMQ quorum queues set, so consumers read one header
on both brokers). A consumer that runs longer than the visibility timeout can
therefore see its message delivered a second time: handlers must be
idempotent, as they must be with SQS.

Bindings are stored in the database too, with their exchange's type, so a
process that publishes routes to queues bound by other processes, even to an
exchange it never declared itself.

URL: ``eventshop-sqlite://`` followed by the path of the database file, for
example ``eventshop-sqlite:///var/broker.sqlite3`` (relative to the working
directory) or ``eventshop-sqlite:////tmp/broker.sqlite3`` (absolute).
Register the scheme with :func:`messaging.transport.register_transport_alias`.

Transport options: ``visibility_timeout`` (seconds, default 30) and
``polling_interval`` (seconds, default 0.1).

This module must not import Django: kombu loads it in every process.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from queue import Empty

from kombu.log import get_logger
from kombu.transport import virtual
from kombu.transport.virtual.exchange import TopicExchange
from kombu.utils.json import dumps, loads

logger = get_logger(__name__)

BUSY_TIMEOUT_MS = 30000

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS message (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        payload TEXT NOT NULL,
        priority INTEGER,
        created_at REAL NOT NULL,
        visible_at REAL NOT NULL,
        delivery_count INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS message_ready
        ON message (queue, visible_at, id)
    """,
    """
    CREATE TABLE IF NOT EXISTS binding (
        exchange TEXT NOT NULL,
        exchange_type TEXT NOT NULL,
        routing_key TEXT NOT NULL,
        queue TEXT NOT NULL,
        pattern TEXT,
        UNIQUE (exchange, routing_key, queue)
    )
    """,
)


def database_path(client):
    """Return the database file named by the URL of kombu ``client``.

    The transport lets kombu parse the URL, which puts the URL's path, minus
    its first slash, in ``virtual_host``: ``///var/b.sqlite3`` gives
    ``var/b.sqlite3`` and ``////tmp/b.sqlite3`` gives ``/tmp/b.sqlite3``.
    ``/`` is kombu's default when the URL has no path at all.
    """
    path = client.virtual_host
    if not path or path == '/':
        raise ValueError(
            'An eventshop-sqlite URL must name the database file, '
            'e.g. eventshop-sqlite:///var/broker.sqlite3')
    return Path(path).absolute()


class AMQPTopicExchange(TopicExchange):
    """kombu's topic exchange, with AMQP's meaning of ``#``.

    kombu compiles ``a.#`` to ``^a\\..*?$``, which needs the dot after ``a``,
    so ``a.#`` does not match ``a`` itself. In AMQP (and RabbitMQ) ``#``
    matches zero or more words and ``*`` exactly one.
    """

    # Each word brings its own separator, "start of key or a dot", so ``#``
    # can stand for zero words without leaving a dot that must match.
    _word_start = r'(?:^|\.)'

    def key_to_pattern(self, rkey):
        parts = []
        for word in rkey.split('.'):
            if word == '#':
                parts.append(rf'(?:{self._word_start}[^.]+)*')
            elif word == '*':
                parts.append(rf'{self._word_start}[^.]+')
            else:
                parts.append(self._word_start + re.escape(word))
        return '^{}$'.format(''.join(parts))


class QoS(virtual.QoS):
    """Releases unacked messages in place instead of re-publishing copies."""

    def restore_unacked(self):
        self._flush()
        messages = list(self._delivered.values())
        self._delivered.clear()
        self.channel._release(messages)

    def restore_unacked_once(self, stderr=None):
        # The base class dumps messages it cannot restore to a file; here they
        # are still in the database and come back after the visibility
        # timeout, so a warning is enough.
        self._on_collect.cancel()
        if self._delivered.restored:
            return
        if not (self.restore_at_shutdown and self.channel.do_restore):
            return
        self._flush()
        unacked = len(self._delivered)
        try:
            self.restore_unacked()
        except sqlite3.Error as exc:
            logger.warning(
                'Could not release %d unacked message(s), they will be '
                'redelivered after the visibility timeout: %r', unacked, exc)
        finally:
            self._delivered.restored = True


class Channel(virtual.Channel):
    """One SQLite connection per kombu channel."""

    QoS = QoS

    # Bindings live in the database, so fanout can be routed from any
    # process; kombu only calls ``_queue_bind`` when this is set.
    supports_fanout = True

    exchange_types = {
        **virtual.Channel.exchange_types, 'topic': AMQPTopicExchange,
    }

    visibility_timeout = 30

    from_transport_options = (
        virtual.Channel.from_transport_options + ('visibility_timeout',)
    )

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        self._lock = threading.RLock()
        self._db = None
        self._db_pid = None
        self._noack_queues = set()
        self._auto_delete_queues = set()
        # Connect now so that a bad path fails on connect, not on publish.
        self.db()

    def db(self):
        """Return this channel's sqlite3 connection, opening it if needed."""
        # SQLite connections must not be used across fork(): a forked child
        # opens its own and leaves the parent's alone.
        if self._db is None or self._db_pid != os.getpid():
            self._db = self._open(self.connection.database_path)
            self._db_pid = os.getpid()
        return self._db

    @staticmethod
    def _open(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Acks may come from another thread than the consuming one (kombu
        # allows it); self._lock serialises use of the connection.
        db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )
        try:
            # WAL lets publishers and pollers read while a claim is written.
            db.execute('PRAGMA journal_mode = WAL')
            db.execute('BEGIN IMMEDIATE')
            for statement in SCHEMA:
                db.execute(statement)
            db.execute('COMMIT')
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def _transaction(self):
        """Run a write transaction that holds SQLite's write lock from BEGIN.

        Taking the lock up front (``BEGIN IMMEDIATE``) means two processes
        can never both read the same ready row and then both claim it.
        """
        with self._lock:
            db = self.db()
            db.execute('BEGIN IMMEDIATE')
            try:
                yield db
                db.execute('COMMIT')
            except BaseException:
                if db.in_transaction:
                    db.execute('ROLLBACK')
                raise

    @contextmanager
    def one_commit(self):
        """Writes inside (publishes, acks) go into one transaction: one commit, one fsync, for many.
        If it fails, none of them happened."""
        with self._transaction():
            yield

    def _fetch(self, sql, params=()):
        with self._lock:
            return self.db().execute(sql, params).fetchall()

    def _write(self, sql, params=()):
        """Run one statement in autocommit mode; return the rows changed."""
        with self._lock:
            return self.db().execute(sql, params).rowcount

    # -- messages ---------------------------------------------------------

    def _put(self, queue, message, **kwargs):
        # Autocommit: the row is durable once this returns.
        now = time.time()
        self._write(
            'INSERT INTO message (queue, payload, priority, created_at,'
            ' visible_at) VALUES (?, ?, ?, ?, ?)',
            (queue, dumps(message), self._get_message_priority(message),
             now, max(now, _not_before(message))),
        )

    def _put_fanout(self, exchange, message, routing_key, **kwargs):
        for queue in self._lookup(exchange, routing_key):
            self._put(queue, message)

    def _get(self, queue, timeout=None):
        return self._claim(queue, delete=queue in self._noack_queues)

    def _claim(self, queue, delete):
        """Take the oldest ready message of ``queue``; raise Empty if none.

        With ``delete`` the row is removed (no-ack consumers), otherwise it is
        hidden for ``visibility_timeout`` seconds until acked or released.
        """
        ready = ('SELECT id, payload, delivery_count FROM message'
                 ' WHERE queue = ? AND visible_at <= ? ORDER BY id LIMIT 1')
        now = time.time()
        # Idle polling must not take the write lock every polling interval.
        if not self._fetch(ready, (queue, now)):
            raise Empty()
        with self._transaction() as db:
            row = db.execute(ready, (queue, now)).fetchone()
            if row is None:  # another process claimed it meanwhile
                raise Empty()
            message_id, payload, delivery_count = row
            delivery_count += 1
            if delete:
                db.execute('DELETE FROM message WHERE id = ?', (message_id,))
            else:
                db.execute(
                    'UPDATE message SET visible_at = ?, delivery_count = ?'
                    ' WHERE id = ?',
                    (now + self.visibility_timeout, delivery_count,
                     message_id),
                )
        return self._as_delivered(loads(payload), message_id, delivery_count)

    @staticmethod
    def _as_delivered(payload, message_id, delivery_count):
        properties = payload['properties']
        # Unique per delivery, like an SQS receipt handle, so a message this
        # channel claims again after its timeout is tracked separately.
        properties['delivery_tag'] = f'{message_id}.{delivery_count}'
        properties['delivery_info'].update(
            sqlite_message_id=message_id,
            sqlite_delivery_count=delivery_count,
            redelivered=delivery_count > 1,
        )
        payload['headers'] = {
            **(payload.get('headers') or {}),
            'x-delivery-count': delivery_count - 1,
        }
        return payload

    def _release(self, messages):
        """Make claimed messages visible again at once.

        Only a claim that is still current is released: if the visibility
        timeout already handed the message to another consumer, that
        consumer keeps it.
        """
        claims = [
            (time.time(), message.delivery_info['sqlite_message_id'],
             message.delivery_info['sqlite_delivery_count'])
            for message in messages
        ]
        if not claims:
            return
        with self._transaction() as db:
            db.executemany(
                'UPDATE message SET visible_at = ?'
                ' WHERE id = ? AND delivery_count = ?',
                claims,
            )

    def _restore(self, message):
        # kombu re-publishes a copy here; the row itself is still ours.
        self._release([message])

    def _delete_delivered(self, delivery_tag):
        try:
            delivery_info = self.qos.get(delivery_tag).delivery_info
        except KeyError:  # already acked or rejected
            return
        self._write('DELETE FROM message WHERE id = ?',
                    (delivery_info['sqlite_message_id'],))

    def basic_ack(self, delivery_tag, multiple=False):
        self._delete_delivered(delivery_tag)
        super().basic_ack(delivery_tag, multiple=multiple)

    def basic_reject(self, delivery_tag, requeue=False):
        # With requeue, the base class calls _restore, which releases the row.
        if not requeue:
            self._delete_delivered(delivery_tag)
        super().basic_reject(delivery_tag, requeue=requeue)

    def basic_get(self, queue, no_ack=False, **kwargs):
        try:
            payload = self._claim(queue, delete=no_ack)
        except Empty:
            return None
        message = self.Message(payload, channel=self)
        if not no_ack:
            self.qos.append(message, message.delivery_tag)
        return message

    def basic_consume(self, queue, no_ack, *args, **kwargs):
        # Nobody acks for a no-ack consumer, so its messages are deleted
        # when fetched instead of coming back after the visibility timeout.
        if no_ack:
            self._noack_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_cancel(self, consumer_tag):
        queue = self._tag_to_queue.get(consumer_tag)
        super().basic_cancel(consumer_tag)
        if queue is None or queue in self._active_queues:
            return
        self._noack_queues.discard(queue)
        # AMQP deletes an auto-delete queue when its consumer goes away;
        # without this every Celery worker restart would leave a gossip
        # queue behind that keeps collecting heartbeats.
        if queue in self._auto_delete_queues:
            self.queue_delete(queue)

    # -- queues -----------------------------------------------------------

    def _new_queue(self, queue, auto_delete=False, **kwargs):
        if auto_delete:
            self._auto_delete_queues.add(queue)

    def _size(self, queue):
        """Return the number of ready (visible) messages."""
        [(count,)] = self._fetch(
            'SELECT COUNT(*) FROM message WHERE queue = ? AND visible_at <= ?',
            (queue, time.time()),
        )
        return count

    def _purge(self, queue):
        """Delete the ready messages; claimed ones are left to their owner."""
        return self._write(
            'DELETE FROM message WHERE queue = ? AND visible_at <= ?',
            (queue, time.time()),
        )

    def _has_queue(self, queue, **kwargs):
        [(exists,)] = self._fetch(
            'SELECT EXISTS (SELECT 1 FROM binding WHERE queue = ?)'
            ' OR EXISTS (SELECT 1 FROM message WHERE queue = ?)',
            (queue, queue),
        )
        return bool(exists)

    def _delete(self, queue, *args, **kwargs):
        self._auto_delete_queues.discard(queue)
        with self._transaction() as db:
            db.execute('DELETE FROM message WHERE queue = ?', (queue,))
            db.execute('DELETE FROM binding WHERE queue = ?', (queue,))

    def queue_delete(self, queue, if_unused=False, if_empty=False, **kwargs):
        # The base class only deletes through the bindings this process
        # declared; the queue may have been bound by another one.
        if if_empty and self._size(queue):
            return
        self._delete(queue)
        self.state.queue_bindings_delete(queue)

    # -- exchanges and bindings -------------------------------------------

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        self._write(
            'INSERT INTO binding'
            ' (exchange, exchange_type, routing_key, pattern, queue)'
            ' VALUES (?, ?, ?, ?, ?)'
            ' ON CONFLICT (exchange, routing_key, queue) DO UPDATE'
            ' SET exchange_type = excluded.exchange_type,'
            ' pattern = excluded.pattern',
            (exchange, self.typeof(exchange).type, routing_key, pattern,
             queue),
        )

    def queue_unbind(self, queue, exchange=None, routing_key='',
                     arguments=None, **kwargs):
        super().queue_unbind(queue, exchange, routing_key, arguments,
                             **kwargs)
        self._write(
            'DELETE FROM binding'
            ' WHERE exchange = ? AND routing_key = ? AND queue = ?',
            (exchange, routing_key, queue),
        )

    def exchange_delete(self, exchange, if_unused=False, nowait=False):
        super().exchange_delete(exchange, if_unused=if_unused, nowait=nowait)
        self._write('DELETE FROM binding WHERE exchange = ?', (exchange,))

    def get_table(self, exchange):
        return self._fetch(
            'SELECT routing_key, pattern, queue FROM binding'
            ' WHERE exchange = ?',
            (exchange,),
        )

    def list_bindings(self):
        return self._fetch('SELECT queue, exchange, routing_key FROM binding')

    def _lookup(self, exchange, routing_key, default=None):
        queues = super()._lookup(exchange, routing_key, default)
        alternate = (self.state.exchanges.get(exchange) or {}).get('arguments', {}).get('alternate-exchange')
        if queues or not alternate:
            return queues
        # Like RabbitMQ's alternate exchange: what no binding matched goes there, not nowhere.
        # Known when this process declared the exchange (every Eventshop process declares them).
        return super()._lookup(alternate, routing_key, default)

    def typeof(self, exchange, default='direct'):
        # A publisher need not have declared the exchange itself: fall back
        # to the type recorded with the bindings other processes made.
        if exchange in self.state.exchanges:
            return super().typeof(exchange, default)
        rows = self._fetch(
            'SELECT exchange_type FROM binding WHERE exchange = ?'
            ' ORDER BY rowid DESC LIMIT 1',
            (exchange,),
        )
        return self.exchange_types[rows[0][0] if rows else default]

    def close(self):
        super().close()  # cancels consumers and releases unacked messages
        if self._db is not None and self._db_pid == os.getpid():
            self._db.close()
        self._db = None


class Transport(virtual.Transport):
    """Kombu transport storing messages in a local SQLite file."""

    Channel = Channel

    polling_interval = 0.1

    driver_type = 'sqlite'
    driver_name = 'sqlite3'

    # "database is locked" after the busy timeout is worth retrying.
    connection_errors = (
        virtual.Transport.connection_errors + (sqlite3.OperationalError,)
    )

    implements = virtual.Transport.implements.extend(
        exchange_type=frozenset(['direct', 'topic', 'fanout']),
    )

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        # Resolved once, so a later chdir() cannot split one process's
        # channels across two databases.
        self.database_path = database_path(client)

    def driver_version(self):
        return sqlite3.sqlite_version


# A producer may ask for delayed delivery (like SQS's DelaySeconds): the message stays invisible
# until this epoch time. The consumer runtime uses it for retries with backoff.
NOT_BEFORE_HEADER = 'x-eventshop-not-before'


def _not_before(message):
    try:
        return float((message.get('headers') or {}).get(NOT_BEFORE_HEADER, 0))
    except (TypeError, ValueError):
        return 0.0
