"""PURE: how a symbol (or any name that is data) is shown in text, unambiguously.

A plain symbol (``BTC-USDT``, ``BTC/USDT``, ``ES.FUT``) is shown as it is. One that a reader
could misread — empty, with whitespace, a control character, a quote, a comma, ``=``, a
backslash or square brackets (terminal markup) — is shown as a JSON string, the form ``--json``
prints, so every character is visible and the text can be pasted back.
"""

from __future__ import annotations

import json

from seamfill.core.types import Series

_NEEDS_QUOTES = frozenset(" ,=\"'\\[]`")


def shown(text: str) -> str:
    """``text`` as it is when unambiguous, else as a double-quoted JSON string."""
    if text and text.isprintable() and not any(c in _NEEDS_QUOTES for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def series_text(series: Series) -> str:
    """``dataset/symbol`` with the symbol :func:`shown` (dataset names are plain by config)."""
    return f"{series.dataset}/{shown(series.symbol)}"


__all__ = ["series_text", "shown"]
