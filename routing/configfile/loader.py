"""Reading a config file's text: YAML (a superset of JSON) or, for ``*.json``, strict JSON, into plain
values for ``parse_config``. Every problem the reader finds names its line.

PyYAML reads YAML 1.1, whose implicit types change some values people write unquoted: a key given twice
keeps the last one, ``021`` (a Boston ZIP prefix) is octal 17, ``10:30`` is the base-60 integer 630. The
loader refuses the first and keeps the others as the text written.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from routing.configfile.checker import ConfigInvalid, paired_surrogates

MAX_VALUES = 200_000  # a config of 1,000 reps with their hours and time off is ~50,000

INT, FLOAT, STR = (f"tag:yaml.org,2002:{name}" for name in ("int", "float", "str"))
# YAML 1.1 numbers whose value is not what the digits say: a leading zero (octal, or a postcode) and
# base 60 (``10:30``, ``1:30.5``); YAML 1.2 reads neither as base 8 or 60 either
CHANGED_NUMBER = re.compile(r"^[-+]?(0[0-9_]|[^:]*:)")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently: a
    pasted second ``monday:`` dropped the first Monday's hours without a word)."""

    def resolve(self, kind, value, implicit):
        # an unquoted ``021`` or ``10:30`` is the text written, as it would be quoted: a rule's value
        # ``starts_with: 021`` stored as 17 matched other prospects than those it was written for; where a
        # number is expected, the checker refuses the text with its path
        tag = super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode and implicit[0] and tag in (INT, FLOAT) and CHANGED_NUMBER.match(value):
            return STR
        return tag

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *defaults``: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"the key {key!r} is given twice",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_scalar(self, node):
        # every string and key: "\ud83d\ude00" (an emoji as JSON escapes it) is one character, as in JSON
        value = super().construct_scalar(node)
        return paired_surrogates(value) if isinstance(value, str) else value

    def construct_yaml_timestamp(self, node):
        # PyYAML raises a bare ValueError for ``2026-02-30``, which says neither where nor what
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a date: {exc}", node.start_mark
            ) from None

    def construct_document(self, node):
        # a few hundred bytes of nested aliases can stand for billions of values ("billion laughs"), which
        # every later walk over the document would visit: refuse a document that expands too far
        if _expanded(node, {}) > MAX_VALUES:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"the document stands for more than {MAX_VALUES:,} values (aliases)",
                node.start_mark,
            )
        return super().construct_document(node)


# the safe loader's constructors are registered as functions of ``SafeConstructor``: register the override
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _UniqueKeyLoader.construct_yaml_timestamp)


def _expanded(node: yaml.Node, seen: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias written out (shared nodes counted each time)."""
    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = 1  # an alias of a node that contains itself counts once
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded(child, seen) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded(k, seen) + _expanded(v, seen) for k, v in node.value)
    else:
        total = 1
    seen[id(node)] = total
    return total


class _KeyGivenTwice(ValueError):
    def __init__(self, key: str, index: int):
        super().__init__(f"the key {key!r} is given twice in one object")
        self.index = index  # the second one's place among the object's keys
        self.at: int | None = None  # … and in the text, once found


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    found = {}
    for index, (key, value) in enumerate(pairs):
        if key in found:
            raise _KeyGivenTwice(key, index)
        found[key] = value
    return found


_WS = json.decoder.WHITESPACE.match


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _KeyGivenTwice as exc:
        at = _second_key_at(text)
        if at is None:
            raise
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        raise ValueError(f"{exc}: line {line} column {column} (char {at})") from None


def _second_key_at(text: str) -> int | None:
    """Where in ``text`` the key given twice is. JSON's fast reader tells no positions to the hook that
    finds it, so the text is read again (only then) by the pure-Python reader, whose object parser is
    wrapped to learn where the object starts."""
    decoder = json.JSONDecoder(object_pairs_hook=_unique_keys)

    def parse_object(s_and_end, strict, scan_once, *args):
        try:
            return json.decoder.JSONObject(s_and_end, strict, scan_once, *args)
        except _KeyGivenTwice as exc:
            if exc.at is None:  # the innermost object: the one with the key given twice
                exc.at = _key_at(*s_and_end, exc.index, strict, scan_once)
            raise

    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    try:
        decoder.decode(text)
    except _KeyGivenTwice as exc:
        return exc.at
    except (ValueError, RecursionError):
        return None
    return None


def _key_at(s: str, end: int, index: int, strict: bool, scan_once) -> int:
    """The position of key number ``index`` of the (valid) object whose text continues at ``end``."""
    end = _WS(s, end).end()
    for _ in range(index):
        _, end = json.decoder.scanstring(s, end + 1, strict)  # a key
        end = _WS(s, _WS(s, end).end() + 1).end()  # ``:``
        _, end = scan_once(s, end)  # its value
        end = _WS(s, _WS(s, end).end() + 1).end()  # ``,``
    return end


def load_document(text: str, *, filename: str = "<config>") -> Any:
    """Parse YAML (a superset of JSON) or, for ``*.json``, strict JSON; a key given twice in one mapping is
    an error, as an unknown key is. A byte order mark (Windows editors save one) is no part of the text, and
    a surrogate pair escaped in YAML (``"\\ud83d\\ude00"``, JSON for 😀) is one character, as in JSON."""
    text = text.removeprefix("\ufeff")
    try:
        if filename.lower().endswith(".json"):
            return _load_json(text)
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except RecursionError:
        raise ConfigInvalid([f"{filename}: nested too deeply"]) from None
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if filename.lower().endswith(".json") else "YAML"
        raise ConfigInvalid([f"{filename}: not valid {kind}: {exc}"]) from None
