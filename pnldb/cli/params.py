"""Parameter types shared by the commands: exact dates and decimals."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

import click


class IsoDate(click.ParamType):
    """A calendar date written YYYY-MM-DD."""
    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            self.fail(f"{value!r} is not a date written YYYY-MM-DD", param, ctx)
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            self.fail(f"{value!r} is not a valid date: {exc}", param, ctx)


class DecimalAmount(click.ParamType):
    """A finite decimal number, kept exact (Decimal, never float)."""
    name = "DECIMAL"

    def convert(self, value, param, ctx):
        if isinstance(value, Decimal):
            return value
        try:
            amount = Decimal(value.strip())
        except (InvalidOperation, AttributeError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not amount.is_finite():
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return amount


ISO_DATE = IsoDate()
DECIMAL = DecimalAmount()
