"""Reading what a page's form sent: text, times, where to go next. Errors are kept per field, to be
shown beside the field and in the summary at the top of the form (``templates/_forms.html``).

A page that takes a posted form declares ``data: FormData`` (the fields as text); the session
middleware has already checked its CSRF token. After a post that changed something, answer with
``layout.see_other(path)`` (post, redirect, get), so a reload never sends the form twice.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import attrs
from litestar.enums import RequestEncodingType
from litestar.params import Body

from rfr.domain.user import User
from rfr.entrypoints.web.security import WEB_PATH

MAX_TEXT = 2000
# A posted form's fields, as text (``application/x-www-form-urlencoded``, what a browser sends).
FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
_LOCAL_PATH = re.compile(r"/app(?:[/?][A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?")


@attrs.define
class FormErrors:
    """``field -> message``, in the order found."""

    by_field: dict[str, str] = attrs.field(factory=dict)

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, message)

    def __bool__(self) -> bool:
        return bool(self.by_field)


def text(value: str | None, field: str, errors: FormErrors, *, required: bool = True, label: str = "") -> str:
    """``value`` trimmed; an error when required and empty, or longer than ``MAX_TEXT``."""
    cleaned = (value or "").strip()
    if required and not cleaned:
        errors.add(field, f"Enter {label or field}.")
    elif len(cleaned) > MAX_TEXT:
        errors.add(field, f"{(label or field).capitalize()} must be at most {MAX_TEXT} characters.")
    return cleaned


def typed_id(value: str | None, field: str, errors: FormErrors, *, label: str) -> UUID | None:
    """The id of a record the user typed (``label``: "probe", "approval", ...); an error naming
    the field when it is empty or not an id. (``record_id`` below also takes a user id.)"""
    cleaned = (value or "").strip()
    if not cleaned:
        errors.add(field, f"Enter the {label}'s id.")
        return None
    try:
        return UUID(cleaned)
    except ValueError:
        errors.add(field, f"A {label} id looks like 5f0c2a1e-8d4b-4f7a-9a61-3b2d1c0e9f88.")
        return None


def moment(
    value: str | None, field: str, errors: FormErrors, *, to_end_of_second: bool = False
) -> datetime | None:
    """A time typed as ISO 8601 or sent by a ``datetime-local`` control; no zone means UTC.

    With ``to_end_of_second``, a time given to the second (as the control sends it) stands for the
    whole of that second: "as of 12:00:05" includes what happened at 12:00:05.4.
    """
    cleaned = (value or "").strip()
    if not cleaned:
        return None
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        errors.add(field, "Enter a date and time such as 2026-11-01T12:00 (UTC).")
        return None
    if to_end_of_second and parsed.microsecond == 0:
        parsed = parsed.replace(microsecond=999_999)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def record_id(value: str | None, field: str, errors: FormErrors) -> UUID | None:
    """An aggregate id, or a user id standing for that user's record (``User.id_for``)."""
    cleaned = (value or "").strip()
    if not cleaned:
        errors.add(field, "Enter a record id, or a user id.")
        return None
    try:
        return UUID(cleaned)
    except ValueError:
        pass
    if len(cleaned) > 200:
        errors.add(field, "That is neither a record id nor a user id.")
        return None
    return User.id_for(cleaned)


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a page of this client (a local path under /app), else None: a link
    never sends a user elsewhere after signing in."""
    if value and _LOCAL_PATH.fullmatch(value) and "//" not in value and "\\" not in value:
        return value
    return None


def home_path() -> str:
    return f"{WEB_PATH}/"
