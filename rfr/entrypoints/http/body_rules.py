"""Rules a body's fields obey together, declared once on the body type: checked and published.

A field's own limits live on its type (``msgspec.Meta``) and reach the schema with it. A rule
between fields ("give ``rank`` or ``staff_grade``, not both") has no place on one field, so a
body type names it in a class attribute, ``fields_rule``. From that one declaration
``strict_input.decode_json`` refuses a body that breaks it (400, naming the first field of the
rule) and ``openapi_contract.FieldDocs`` writes it into the type's schema as JSON Schema
(``oneOf``/``anyOf`` of ``required``), so a client's validator knows it too.

The fields a rule names are optional with no value when left out (``msgspec.UNSET``), and null
is not one of their values: "given" and "present in the JSON" are then the same thing, which
is what ``required`` means in JSON Schema.

This module is the HTTP edge's: what the policy judges between fields stays in the domain.
"""

from __future__ import annotations

from typing import Any

import attrs
import msgspec
from litestar.exceptions import ValidationException


@attrs.frozen
class GiveFields:
    """Of ``fields``, exactly one (``exactly``) or at least one must be given."""

    fields: tuple[str, ...]
    exactly: bool

    @property
    def sentence(self) -> str:
        return f"give {'exactly' if self.exactly else 'at least'} one of {', '.join(self.fields)}"

    def json_schema(self) -> dict[str, list[dict[str, list[str]]]]:
        """The rule in JSON Schema, to sit beside the type's ``properties``."""
        keyword = "oneOf" if self.exactly else "anyOf"
        return {keyword: [{"required": [name]} for name in self.fields]}

    def refusal(self, body: Any) -> ValidationException | None:
        given = sum(getattr(body, name) is not msgspec.UNSET for name in self.fields)
        if given == 0 or (self.exactly and given > 1):
            entry = {"key": self.fields[0], "source": "body", "message": self.sentence}
            return ValidationException(self.sentence, extra=[entry])
        return None


def exactly_one_of(*fields: str) -> GiveFields:
    return GiveFields(fields, exactly=True)


def at_least_one_of(*fields: str) -> GiveFields:
    return GiveFields(fields, exactly=False)


def fields_rule(kind: Any) -> GiveFields | None:
    """The rule ``kind`` declares between its fields, if any."""
    rule = getattr(kind, "fields_rule", None)
    return rule if isinstance(rule, GiveFields) else None


def check_fields_rule(body: Any) -> None:
    """Raises the 400 for a decoded ``body`` that breaks its type's rule."""
    rule = fields_rule(type(body))
    if rule is not None and (refusal := rule.refusal(body)) is not None:
        raise refusal
