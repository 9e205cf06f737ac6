"""Hardening: manage tokens never reach the logs, and a configuration document cannot stand for more
values than a walk over it can afford (a "billion laughs" of nested YAML aliases). Each test failed before
its fix."""

from __future__ import annotations

import logging
import time

import pytest
from rest_framework.test import APIClient

from config.logfilters import redact
from tests.foundation.conftest import book_demo


def test_a_valid_manage_token_is_not_written_to_the_log_by_a_failed_request(demo, caplog):
    """The manage token is a bearer credential stored only as a hash, but Django's ``django.request``
    logger writes the path of every 4xx answer ("Bad Request: /api/v1/bookings/<token>/…"): a prospect's
    mistyped reschedule put a live token in the log, from which anyone reading it could cancel or move the
    booking. It is redacted now (``config.logfilters``)."""
    api = APIClient()
    token = book_demo(api)["manage_token"]
    caplog.set_level(logging.INFO)
    response = api.post(f"/api/v1/bookings/{token}/reschedule", {"start": "not a time"}, format="json")
    assert response.status_code == 400
    # the token still works: the log line is a usable credential
    assert api.get(f"/api/v1/bookings/{token}").status_code == 200
    logged = [r.getMessage() for r in caplog.records if token in r.getMessage()]
    assert logged == [], f"manage token logged: {logged}"
    assert any("/api/v1/bookings/<token>/reschedule" in r.getMessage() for r in caplog.records)


def test_redaction_keeps_other_paths():
    assert (
        redact("GET /manage/abcdefghijklmnopqrstuvwxyz012345/ics HTTP/1.1")
        == "GET /manage/<token>/ics HTTP/1.1"
    )
    assert (
        redact("Not Found: /api/v1/meeting-types/intro/slots")
        == "Not Found: /api/v1/meeting-types/intro/slots"
    )


def _yaml_bomb(levels: int) -> bytes:
    """A few hundred bytes of YAML whose aliases stand for 9 ** levels entries under ``reps``."""
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    lines.append(f"reps: *{chr(ord('a') + levels - 1)}")
    return ("\n".join(lines) + "\n").encode()


def test_a_tiny_candidate_yaml_with_nested_aliases_is_refused_at_once(demo, admin_client):
    """The simulator's candidate upload goes through ``load_document`` and ``parse_config``, whose walks
    visit the expanded document: 9 ** levels strings. 0.3 kB of 9 levels kept a web worker at 100 % CPU for
    minutes (7 levels: 2.2 s); a document standing for more than ``MAX_VALUES`` values is refused at once.
    ``import_config`` reads files the same way."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from routing.models import Pool

    bomb = _yaml_bomb(7)
    assert len(bomb) < 400
    data = {
        "pool": Pool.objects.order_by("pk").first().slug,
        "mode": "synthetic",
        "start": "2026-03-02 00:00",
        "rate": "1",
        "hours": "1",
        "candidate": SimpleUploadedFile("candidate.yaml", bomb, content_type="application/x-yaml"),
    }
    began = time.monotonic()
    response = admin_client.post("/insights/simulator/", data)
    elapsed = time.monotonic() - began
    assert response.status_code == 400, response.content
    assert elapsed < 1.0, f"a {len(bomb)}-byte candidate file took {elapsed:.1f} s to refuse"


def test_anchors_and_merges_of_a_real_config_still_load():
    from routing.configfile import load_document

    text = (
        "hours: &h {monday: ['09:00-17:00']}\n"
        "reps:\n  - {name: A, working_hours: *h}\n  - {name: B, working_hours: *h}\n"
    )
    assert load_document(text, filename="baton.yaml")["reps"][1]["working_hours"] == {
        "monday": ["09:00-17:00"]
    }


def test_cache_url_accepts_primary_and_replica_list_that_django_redis_cache_takes():
    """Django's RedisCache takes LOCATION as "primary,replica,..." (``re.split("[;,]", …)``): the CACHE_URL
    check read it as one URL and refused it ("bad port"), so a deployment with replicas did not start."""
    from django.core.exceptions import ImproperlyConfigured

    from config.env import env_redis_url

    url = "redis://primary:6379,redis://replica:6379;redis://other:6380"
    try:
        assert env_redis_url("CACHE_URL", environ={"CACHE_URL": url}) == url
    except ImproperlyConfigured as exc:
        pytest.fail(f"a Django-supported CACHE_URL is refused: {exc}")


def test_dev_server_request_lines_still_reach_a_handler():
    """dictConfig removes the handlers of every logger it names, and Django's default gives
    ``django.server`` its own handler with ``propagate: False``: naming it only to add the redaction filter
    left ``runserver`` printing no request line at all (found in review). It has its handler again."""
    import logging

    logger = logging.getLogger("django.server")
    assert logger.hasHandlers(), (
        f"django.server: handlers={logger.handlers}, propagate={logger.propagate}: its records go nowhere"
    )


def test_a_server_error_email_to_the_admins_does_not_carry_the_manage_token(
    demo, settings, mailoutbox, monkeypatch
):
    """With ``ADMINS`` set, Django mails every 500 with the request URL, its META (PATH_INFO,
    REQUEST_URI…) and each frame's local variables (the view's ``token``): the log line was redacted, but
    the e-mail handed the prospect's manage token, a bearer credential, to everyone on the list and their
    mail archive. The exception reporter redacts it (``config.logfilters.RedactingExceptionReporter``)."""
    from booking.api import views

    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    api = APIClient(raise_request_exception=False)
    token = book_demo(api)["manage_token"]
    mailoutbox.clear()

    def broken(*args, **kwargs):
        raise RuntimeError("presenter failed")

    monkeypatch.setattr(views, "booking_body", broken)
    assert api.get(f"/api/v1/bookings/{token}").status_code == 500
    [email] = [m for m in mailoutbox if "presenter failed" in m.body]
    texts = [email.subject, email.body] + [alt[0] for alt in email.alternatives]
    assert all(token not in text for text in texts), "the manage token is in the e-mail to the admins"
    assert "/api/v1/bookings/<token>" in email.body


def test_a_django_log_line_is_written_once():
    """Django's own console handler of the ``django`` logger and Baton's root one both wrote every Django
    line (``make run``: "Not Found: …" twice, the reloader's line twice); the 500 e-mails to ADMINS stay."""
    from django.utils.log import AdminEmailHandler

    logger, streams, mails = logging.getLogger("django.request"), [], []
    while logger is not None:
        streams += [h for h in logger.handlers if type(h) is logging.StreamHandler]
        mails += [h for h in logger.handlers if isinstance(h, AdminEmailHandler)]
        logger = logger.parent if logger.propagate else None
    assert len(streams) == 1, streams
    assert len(mails) == 1
