"""A small complete config document for the config-as-code tests, and its import."""

from __future__ import annotations

import copy

from routing.configfile import config_import, parse_config

BASE = {
    "version": 1,
    "reps": [
        {
            "name": "Ana",
            "email": "ana@x.example",
            "timezone": "Europe/Berlin",
            "working_hours": {"monday": ["09:00-17:00"]},
        }
    ],
    "pools": [
        {"slug": "team", "name": "Team", "strategy": "round_robin", "members": [{"rep": "ana@x.example"}]}
    ],
    "meeting_types": [{"slug": "intro", "title": "Intro", "duration_minutes": 30, "pool": "team"}],
}


def apply(document) -> list[str]:
    """Import a copy of ``document``; the changes it made."""
    return config_import(config=parse_config(copy.deepcopy(document)))
