"""The one SQL-literal quoter and the one table-name rule, for every query seamfill writes.

QuestDB's only escape inside a string literal is a doubled ``'`` (backslashes mean nothing), so
quoting doubles quotes and refuses NUL, which would cut the statement short. A table name is a
letter or ``_`` followed by letters, digits or ``_`` (at most 127 characters): what QuestDB takes
unquoted, what the coordinator's configuration accepts, and what ILP can name; it is written
double-quoted all the same.
"""

from __future__ import annotations

import re

from seamfill.core.errors import InvalidArgument

__all__ = ["TABLE_RULE", "check_table", "quote_literal", "quote_table"]

_TABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,126}")
TABLE_RULE = "a letter or '_' followed by letters, digits or '_' (127 characters at most)"
"""The table-name rule, as error messages state it."""


def quote_literal(text: str) -> str:
    """``text`` as a QuestDB SQL string literal (``'`` doubled; NUL refused)."""
    if "\x00" in text:
        raise InvalidArgument("a SQL string literal cannot hold a NUL character")
    return "'" + text.replace("'", "''") + "'"


def check_table(name: str, what: str = "table name") -> str:
    """``name`` if it follows :data:`TABLE_RULE`, else :class:`InvalidArgument` naming ``what``."""
    if not isinstance(name, str) or not _TABLE_RE.fullmatch(name):
        shown = repr(name[:40] + "..." if isinstance(name, str) and len(name) > 40 else name)
        raise InvalidArgument(f"{what} {shown} is not valid: use {TABLE_RULE}")
    return name


def quote_table(name: str, what: str = "table name") -> str:
    """A checked table name, double-quoted for SQL."""
    return f'"{check_table(name, what)}"'
