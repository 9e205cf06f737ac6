"""``{{ value|num:2 }}``: ``floatformat`` that shows ``n/a`` for a missing figure (``floatformat`` alone turns
``None`` or ``"n/a"`` into an empty string)."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def num(value, digits=1):
    return "n/a" if value is None else floatformat(value, digits)
