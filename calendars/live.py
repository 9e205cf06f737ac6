"""Live free/busy checks at booking time, for the chosen host(s) only."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime

from calendars.crypto import decrypt_secrets
from calendars.errors import CalendarError
from calendars.models import Calendar, CalendarConnection
from calendars.services.connections import provider_for, store_secrets

logger = logging.getLogger("calendars")
Provider = CalendarConnection.Provider
Status = CalendarConnection.Status


def hosts_busy_live(
    rep_ids: Iterable[int], start: datetime, end: datetime, *, timeout_seconds: float = 2.0
) -> set[int]:
    """Return the reps that the provider says are busy in [start, end) right now.

    Reps without a connected Google/Microsoft calendar have nothing live to ask: their synced (manual/ICS)
    busy times decide. Each connection is asked in parallel (one free/busy call over its blocking
    calendars, no retries); a provider that does not answer within ``timeout_seconds`` — or fails — is
    ignored (the synced data decides). Worker threads never touch the database; refreshed tokens are
    stored afterwards by the calling thread.
    """
    ids = set(rep_ids)
    if not ids:
        return set()
    calendars = (
        Calendar.objects.filter(
            connection__rep_id__in=ids,
            blocks_availability=True,
            connection__provider__in=[Provider.GOOGLE, Provider.MICROSOFT],
        )
        .exclude(connection__status=Status.DISCONNECTED)
        .select_related("connection__rep")
    )
    grouped: dict[int, list[Calendar]] = defaultdict(list)
    for cal in calendars:
        grouped[cal.connection_id].append(cal)
    if not grouped:
        return set()
    jobs = []
    for cals in grouped.values():
        connection = cals[0].connection
        try:
            provider = provider_for(
                connection,
                timeout=timeout_seconds,
                retries=0,
                persist=False,
                secrets=decrypt_secrets(connection.secret_blob),
            )
        except CalendarError:
            continue
        jobs.append((connection, provider, [c.external_id for c in cals]))
    busy: set[int] = set()
    pool = ThreadPoolExecutor(max_workers=min(8, len(jobs)) or 1, thread_name_prefix="live-freebusy")
    try:
        futures = {
            pool.submit(provider.busy_in, external_ids, start, end): (connection, provider)
            for connection, provider, external_ids in jobs
        }
        done, _late = wait(futures, timeout=timeout_seconds)
        for future in done:
            connection, provider = futures[future]
            try:
                stretches = future.result()
            except CalendarError as exc:
                logger.info(
                    "live free/busy of connection %s failed (%s): synced data decides",
                    connection.pk,
                    exc.code,
                )
                continue
            except Exception:
                logger.exception(
                    "live free/busy of connection %s crashed: synced data decides", connection.pk
                )
                continue
            if any(s < end and e > start for s, e in stretches):
                busy.add(connection.rep_id)
            if provider.changed_secrets.get("secrets"):
                store_secrets(connection_id=connection.pk, secrets=provider.changed_secrets["secrets"])
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return busy
