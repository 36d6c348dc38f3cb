"""How an audit entry reads on the console: one line per changed field, money in ¥."""

from __future__ import annotations

from django.utils.translation import gettext as _

from .templatetags.console import yuan


def _show(key: str, value) -> str:
    if value is None or value == "":
        return "—"
    if key.endswith("_micro") and isinstance(value, int):
        return yuan(value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def audit_changes(entry) -> list[dict]:
    """(field, before, after) rows of an entry, fields that did not change left out."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    rows = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key), after.get(key)
        if key in before and key in after and old == new:
            continue
        label = key.removesuffix("_micro").replace("_", " ")
        rows.append(
            {
                "field": label,
                "before": _show(key, old) if key in before else "",
                "after": _show(key, new) if key in after else "",
            }
        )
    return rows
