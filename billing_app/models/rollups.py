"""Daily roll-ups behind the dashboard and the monthly report (issue 15).

The month's figures are sums over ``DailyRollup`` rows — one per (workspace, UTC day,
family, key) — instead of aggregates over the month's tickets and actions, so a month
reads O(days × keys) rows whatever the volume. ``RollupSource`` remembers what each
ticket, action and approval request currently contributes (its day, key and measures):
when the record changes, ``services.rollups`` subtracts the old contribution and adds
the new one in the writer's transaction, so processing the same write twice changes
nothing and a row moving between keys (a ticket solved, an action that succeeded)
leaves its old key.

The measures are generic integer columns; what each one means per family is in
``services.rollups`` (``MEASURES``), the only writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date
from typing import Any

from django.db import models

from .tenancy import Workspace

MEASURE_FIELDS = ("count", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
ROLLUP_KEY = ("workspace_id", "day", "family", "key")


def rollup_increment(
    connection: Any, deltas: Mapping[tuple[int, date, str, str], Sequence[int]]
) -> None:
    """Add ``deltas`` — ``{(workspace_id, day, family, key): measures}`` — to ``DailyRollup``
    in one statement on ``connection`` (insert, or increment in SQL: concurrent writers
    never overwrite each other). Here, in the models layer, so the provider layer's call
    recorder can use it too."""
    rows = [(k, v) for k, v in deltas.items() if any(v)]
    if not rows:
        return
    qn = connection.ops.quote_name
    table = qn(DailyRollup._meta.db_table)
    quoted = [qn(c) for c in (*ROLLUP_KEY, *MEASURE_FIELDS)]
    updates = ", ".join(f"{q} = {table}.{q} + excluded.{q}" for q in quoted[4:])
    marks = "(" + ", ".join(["%s"] * len(quoted)) + ")"
    values = ", ".join([marks] * len(rows))
    conflict = ", ".join(quoted[:4])
    # Identifiers are the models' own; every value is bound.
    sql = f"INSERT INTO {table} ({', '.join(quoted)}) VALUES {values} ON CONFLICT ({conflict}) DO UPDATE SET {updates}"  # noqa: S608
    params: list[Any] = []
    for (workspace_id, day, family, key), measures in rows:
        params += [workspace_id, connection.ops.adapt_datefield_value(day), family, key]
        params += list(measures)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


class _Measures(models.Model):
    count = models.BigIntegerField(default=0)
    m1 = models.BigIntegerField(default=0)
    m2 = models.BigIntegerField(default=0)
    m3 = models.BigIntegerField(default=0)
    m4 = models.BigIntegerField(default=0)
    m5 = models.BigIntegerField(default=0)
    m6 = models.BigIntegerField(default=0)
    m7 = models.BigIntegerField(default=0)
    m8 = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


PROVIDER_CALL_FAMILY = "call"


def provider_call_rolled_up(connection: Any, values: Mapping[str, Any]) -> None:
    """Count one ``ProviderCall`` (its column ``values``, as just inserted) in the roll-ups:
    family ``call``, key ``operation|outcome``, Σ ``duration_ms`` in ``m1``. Provider calls
    are only ever inserted, so the increment is the whole delta; the caller runs it in the
    INSERT's transaction."""
    day = values["created_at"].astimezone(UTC).date()
    key = f"{values['operation']}|{values['outcome']}"
    measures = (1, int(values["duration_ms"] or 0), 0, 0, 0, 0, 0, 0, 0)
    rollup_increment(
        connection, {(values["workspace_id"], day, PROVIDER_CALL_FAMILY, key): measures}
    )


def provider_call_insert(connection: Any, values: Mapping[str, Any]) -> bool:
    """INSERT one ``ProviderCall`` (its column ``values``) and its roll-up increment in one
    statement on ``connection`` — on PostgreSQL a data-modifying CTE, atomic on its own
    (autocommit: one round trip, one commit, the call's roll-up row locked only for the
    statement). Returns False where one statement cannot write two tables (SQLite): the
    caller then runs the INSERT and ``provider_call_rolled_up`` in a transaction."""
    if connection.vendor != "postgresql":
        return False
    from .metrics import ProviderCall

    qn = connection.ops.quote_name
    columns = list(values)
    insert = "INSERT INTO {} ({}) VALUES ({}) RETURNING 1".format(  # noqa: S608 - ours
        qn(ProviderCall._meta.db_table),
        ", ".join(qn(column) for column in columns),
        ", ".join(["%s"] * len(columns)),
    )
    params: list[Any] = [
        connection.ops.adapt_datetimefield_value(value) if column == "created_at" else value
        for column, value in values.items()
    ]
    table = qn(DailyRollup._meta.db_table)
    quoted = [qn(c) for c in (*ROLLUP_KEY, *MEASURE_FIELDS)]
    updates = ", ".join(f"{q} = {table}.{q} + excluded.{q}" for q in quoted[4:])
    marks = ", ".join(["%s"] * len(quoted))
    sql = (
        f"WITH ins AS ({insert}) INSERT INTO {table} ({', '.join(quoted)}) "  # noqa: S608
        f"SELECT {marks} FROM ins ON CONFLICT ({', '.join(quoted[:4])}) DO UPDATE SET {updates}"
    )
    day = values["created_at"].astimezone(UTC).date()
    key = f"{values['operation']}|{values['outcome']}"
    params += [values["workspace_id"], connection.ops.adapt_datefield_value(day)]
    params += [PROVIDER_CALL_FAMILY, key, 1, int(values["duration_ms"] or 0), *[0] * 7]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return True


class DailyRollup(_Measures):
    """The sums of one (family, key) over one UTC day of one workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    family = models.CharField(max_length=16)
    key = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "family", "key"], name="daily_rollup_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.family} {self.key}: {self.count}"


class RollupSource(_Measures):
    """What one record (a ticket, an action, an approval request) adds to ``DailyRollup``
    now: the delta of a later change is taken against it, which makes updates idempotent."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    family = models.CharField(max_length=16)
    source_id = models.CharField(max_length=40)
    day = models.DateField()
    key = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["family", "source_id"], name="rollup_source_unique")
        ]
        indexes = [models.Index(fields=["workspace", "family"], name="rollup_source_ws_idx")]

    def __str__(self) -> str:
        return f"{self.family} {self.source_id}: {self.day} {self.key}"
