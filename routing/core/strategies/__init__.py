"""Routing strategies, one module each, behind ``REGISTRY`` (key → strategy instance).

``STRATEGY_CHOICES`` is ``[(key, label), …]`` in registration order; ``routing.models`` derives the pool's
strategy choices from it. To add a strategy, write a module with a ``@register``-decorated ``Strategy``
subclass and import it below.
"""

from __future__ import annotations

from routing.core.strategies import first_available, group, ranked, round_robin  # noqa: F401  (registers)
from routing.core.strategies.base import REGISTRY, Strategy, register

STRATEGY_CHOICES: list[tuple[str, str]] = [(key, strategy.label) for key, strategy in REGISTRY.items()]

__all__ = ["REGISTRY", "STRATEGY_CHOICES", "Strategy", "register"]
