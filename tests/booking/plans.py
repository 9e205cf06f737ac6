"""Reading PostgreSQL's plans in tests: how a statement reaches a table."""

from __future__ import annotations

import json

from django.db import connection


def explain(sql: str, params: list) -> dict:
    """The root node of ``EXPLAIN (FORMAT JSON)`` for ``sql`` with ``params``."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def table_access(sql: str, params: list, table: str) -> list[str]:
    """How the plan of ``sql`` reaches ``table``: an index name per scan (a bitmap scan: its index scans'),
    or the node type ("Seq Scan") where no index is used."""
    found, todo = [], [explain(sql, params)]
    while todo:
        node = todo.pop()
        todo.extend(node.get("Plans", []))
        if node.get("Relation Name") != table:
            continue
        if node["Node Type"] == "Bitmap Heap Scan":
            found.extend(child.get("Index Name", child["Node Type"]) for child in node.get("Plans", []))
        else:
            found.append(node.get("Index Name", node["Node Type"]))
    return found


def index_pages(sql: str, params: list, table: str) -> int:
    """Index pages the executed plan of ``sql`` read (buffers hit or read) in its index scans of ``table``
    (a bitmap scan: its index scans', all of them where it combines several)."""
    return _pages("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params, table)


def _pages(plan_sql: str, params: list, table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(plan_sql, params or None)  # None: a text with its arguments in it, as it is
        plan = cursor.fetchone()[0]
    todo, pages = [(json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]], 0
    while todo:
        node = todo.pop()
        todo.extend(node.get("Plans", []))
        if node.get("Relation Name") != table:
            continue
        scans = [node]
        if node["Node Type"] == "Bitmap Heap Scan":  # its index scans, under a BitmapAnd/Or too
            scans, below = [], list(node.get("Plans", []))
            while below:
                scan = below.pop()
                below.extend(scan.get("Plans", []))
                scans.append(scan)
        for scan in scans:
            if "Index Name" in scan:
                pages += scan.get("Shared Hit Blocks", 0) + scan.get("Shared Read Blocks", 0)
    return pages


def generic_index_pages(sql: str, params: list, table: str) -> int:
    """``index_pages`` for ``sql`` as a prepared statement's generic plan: the plan a server keeps for a
    statement it runs often (psycopg prepares it; PostgreSQL plans it once, without the parameters' values,
    with the statistics of that moment, perhaps none). The ``EXECUTE``'s arguments are written into its text
    (``EXECUTE`` takes no bind parameters, and the connection may bind on the server)."""
    import psycopg

    count = sql.count("%s")
    text = sql
    for n in range(1, count + 1):
        text = text.replace("%s", f"${n}", 1)
    arguments = ", ".join(["%s"] * count)
    execute = psycopg.ClientCursor(connection.connection).mogrify(
        f"EXECUTE baton_generic({arguments})", params
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE baton_generic AS {text}")
    try:
        return _pages(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {execute}", [], table)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE baton_generic")
            cursor.execute("SET LOCAL plan_cache_mode = auto")
