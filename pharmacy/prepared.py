"""Querysets whose SQL is built once per process: for the few queries every cart and checkout runs.

Django builds a queryset's SQL afresh each time it is evaluated. For the cart's lines (a
``select_related`` chain through pack, dosage and product) that costs several times what
PostgreSQL needs to run it, more than everything else the cart page's data costs.
``PreparedQuery`` builds the queryset once per database alias with stand-in values for its
parameters, keeps the SQL, and then runs that same SQL with each call's values, turning rows
into model instances the way ``QuerySet.__iter__`` does (``from_db``, ``select_related``
objects cached on their parents, database converters applied). The queryset stays the one
description of the query: no SQL is written by hand, and a change to a model changes both.

The one speed-up kept on library internals: Django has no public way to keep a queryset's
compiled SQL, so this reads ``QuerySet._iterable_class`` and ``_prefetch_related_lookups``, the
compiler's ``select``, ``klass_info``, ``col_count`` and ``get_converters`` and
``django.db.models.query.get_related_populators``. Checked against Django 5.2.20; its figure
(without it, checkout's CPU per request rose by a third) is in docs/performance.md.

Only plain model querysets (``filter``, ``select_related``, ``order_by``, slicing): ``values()``,
annotations and ``prefetch_related`` are refused. The parameters are integers (ids), the only
kind these queries need; each must appear in the SQL.

    lines_of_cart = PreparedQuery(
        lambda cart_id: CartLine.objects.filter(cart_id=cart_id).select_related("tier"), "cart_id"
    )
    lines = lines_of_cart(cart_id=cart.pk)  # a list of CartLine, tiers loaded
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, get_related_populators

# Stand-in ids for the one compilation: negative and huge, so no constant of a query (a flag, a
# limit) can be mistaken for one; each parameter gets its own.
_STAND_IN = -7_919_000_000_000_000


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple  # the compiled parameters; a stand-in where ``slots`` names the argument
    slots: tuple[str | None, ...]
    model: type[Model]
    init_list: tuple[str, ...]
    model_start: int
    model_end: int
    related_populators: tuple
    converters: tuple  # (column, (converter, ...), expression)


class PreparedQuery:
    """A queryset built once per database alias and run with new integer parameters.

    ``build`` takes the parameters named in ``names`` as keyword arguments and returns the
    queryset; it is called once per process and alias, with stand-in values.
    """

    def __init__(self, build: Callable[..., QuerySet], *names: str):
        self._build = build
        self._names = names
        self._compiled: dict[str, _Compiled] = {}

    def __call__(self, **values: int) -> list[Model]:
        if set(values) != set(self._names):
            raise TypeError(f"expected the parameters {sorted(self._names)}, got {sorted(values)}")
        for name, value in values.items():
            if type(value) is not int:  # a bool or a str would be sent as such
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        alias = router.db_for_read(self._model())
        compiled = self._compiled.get(alias)
        if compiled is None:
            compiled = self._compiled[alias] = self._compile(alias)
        params = [
            values[slot] if slot else fixed for slot, fixed in zip(compiled.slots, compiled.params)
        ]
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        return self._objects(compiled, rows, alias, connection)

    def _model(self) -> type[Model]:
        model = getattr(self, "_model_class", None)
        if model is None:
            model = self._model_class = self._build(**self._stand_ins()).model
        return model

    def _stand_ins(self) -> dict[str, int]:
        return {name: _STAND_IN - index for index, name in enumerate(self._names)}

    def _compile(self, alias: str) -> _Compiled:
        stand_ins = self._stand_ins()
        queryset = self._build(**stand_ins).using(alias)
        query = queryset.query
        if (
            queryset._iterable_class is not ModelIterable
            or query.annotations
            or queryset._prefetch_related_lookups
        ):
            raise ValueError("PreparedQuery runs plain model querysets only")
        compiler = query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        by_value = {value: name for name, value in stand_ins.items()}
        slots = tuple(by_value.get(value) if type(value) is int else None for value in params)
        missing = set(self._names) - set(slots)
        if missing:
            raise ValueError(f"the queryset does not use the parameters {sorted(missing)}")
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        converters = compiler.get_converters([column[0] for column in select[: compiler.col_count]])
        return _Compiled(
            sql=sql,
            params=tuple(params),
            slots=slots,
            model=klass_info["model"],
            init_list=tuple(column[0].target.attname for column in select[start:end]),
            model_start=start,
            model_end=end,
            related_populators=tuple(get_related_populators(klass_info, select, alias)),
            converters=tuple(
                (position, tuple(funcs), expression)
                for position, (funcs, expression) in converters.items()
            ),
        )

    @staticmethod
    def _objects(compiled: _Compiled, rows: list, alias: str, connection: Any) -> list[Model]:
        objects = []
        from_db = compiled.model.from_db
        for row in rows:
            if compiled.converters:
                row = list(row)
                for position, funcs, expression in compiled.converters:
                    value = row[position]
                    for func in funcs:
                        value = func(value, expression, connection)
                    row[position] = value
            obj = from_db(alias, compiled.init_list, row[compiled.model_start : compiled.model_end])
            for populator in compiled.related_populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects
