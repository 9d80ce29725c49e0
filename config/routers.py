"""Each service's models live in that service's own database alias."""

SERVICE_DATABASES = {"shipping": "shipping", "loyalty": "loyalty"}
# Messaging tables (outbox, inbox, dead letters) exist in every service database, so each service
# writes its outbox row and its inbox row in the same transaction as its own change.
SHARED_APPS = {"messaging"}


class ServiceDatabaseRouter:
    def db_for_read(self, model, **hints):
        return SERVICE_DATABASES.get(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return SERVICE_DATABASES.get(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label in SHARED_APPS:
            return True
        return SERVICE_DATABASES.get(app_label, "default") == db
