"""Statements Django's ORM has no single call for, or whose compiling costs more CPU than the round
trip, where a consumer pays them once per message (bench/README.md measures them)."""
from __future__ import annotations

from collections.abc import Sequence

from django.db import models, transaction


def insert_unless_present(instance: models.Model, *, using: str, conflict_fields: tuple[str, ...]) -> bool:
    """Insert `instance` unless a row with the same `conflict_fields` (a unique key) exists; True if
    it went in (and then `instance.pk` is set).

    One `INSERT ... ON CONFLICT (...) DO NOTHING RETURNING id` (PostgreSQL, SQLite from 3.35), where
    a savepoint around an INSERT that may raise IntegrityError takes three statements. The unique
    key still decides; a conflict on any other unique column still raises IntegrityError.
    """
    return _insert_returning_pk(instance, using=using, conflict_fields=conflict_fields)


def insert_one(instance: models.Model, *, using: str) -> None:
    """`instance.save()` for a new row, without the ORM's compiling: one INSERT ... RETURNING id."""
    _insert_returning_pk(instance, using=using, conflict_fields=())


def insert_all(instances: Sequence[models.Model], *, using: str) -> None:
    """One multi-row INSERT of new rows (pks not read back): `bulk_create` without the ORM's compiling."""
    if not instances:
        return
    connection = transaction.get_connection(using)
    meta = instances[0]._meta
    fields = _fields(meta)
    one_row = f"({', '.join(['%s'] * len(fields))})"
    params = [value for instance in instances for value in _values(instance, fields, connection)]
    with connection.cursor() as cursor:
        cursor.execute(f"{_insert_into(meta, fields, connection)} VALUES {', '.join([one_row] * len(instances))}", params)


def update_column(model: type[models.Model], column_values: dict, *, field: str, using: str) -> None:
    """Set `field` per row in one UPDATE (`{pk: value}`): `bulk_update` without its expression tree."""
    if not column_values:
        return
    connection = transaction.get_connection(using)
    meta = model._meta
    quote = connection.ops.quote_name
    pk, column = quote(meta.pk.column), quote(meta.get_field(field).column)
    cases = " ".join(["WHEN %s THEN %s"] * len(column_values))
    params = [item for pair in column_values.items() for item in pair] + list(column_values)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {quote(meta.db_table)} SET {column} = CASE {pk} {cases} END "
                       f"WHERE {pk} IN ({', '.join(['%s'] * len(column_values))})", params)


def _insert_returning_pk(instance: models.Model, *, using: str, conflict_fields: tuple[str, ...]) -> bool:
    connection = transaction.get_connection(using)
    meta = instance._meta
    quote = connection.ops.quote_name
    fields = _fields(meta)
    conflict = ""
    if conflict_fields:
        columns = ", ".join(quote(meta.get_field(name).column) for name in conflict_fields)
        conflict = f" ON CONFLICT ({columns}) DO NOTHING"
    with connection.cursor() as cursor:
        cursor.execute(f"{_insert_into(meta, fields, connection)} VALUES ({', '.join(['%s'] * len(fields))})"
                       f"{conflict} RETURNING {quote(meta.pk.column)}", _values(instance, fields, connection))
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding, instance._state.db = False, using
    return True


def _fields(meta) -> list:
    return [field for field in meta.concrete_fields if not field.primary_key]


def _insert_into(meta, fields, connection) -> str:
    quote = connection.ops.quote_name
    return f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)})"


def _values(instance, fields, connection) -> list:
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
