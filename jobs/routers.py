"""Database router: TOQ's MySQL (alias `toq`) is read-only for toqdash."""

from __future__ import annotations

from typing import Any

TOQ_ALIAS = "toq"


class ToqWriteRefused(RuntimeError):
    """Raised when anything tries to write to TOQ's database."""


class ToqReadOnlyRouter:
    """Every model lives in `default`; the `toq` alias is only read through raw SELECTs.

    No model is routed to `toq` for writing, and no migration ever runs on it.
    """

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return None

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        instance = hints.get("instance")
        if instance is not None and getattr(getattr(instance, "_state", None), "db", None) == TOQ_ALIAS:
            raise ToqWriteRefused("toqdash never writes to TOQ's database")
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if db == TOQ_ALIAS:
            return False
        return None
