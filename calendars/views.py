"""The rep's own calendar page: connect Google / Microsoft (OAuth), add an ICS feed, choose calendars,
disconnect. Django login; the rep is ``request.user.rep``."""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from calendars import selectors
from calendars.errors import CalendarError
from calendars.forms import CalendarRolesForm, IcsFeedForm
from calendars.models import Calendar, CalendarConnection
from calendars.providers import google as google_provider
from calendars.providers import google_auth
from calendars.providers import microsoft_auth as ms_auth
from calendars.services import connections as services
from calendars.services.sync import request_sync
from calendars.tasks import connection_events_resync_task, enqueue, watch_ensure_task
from config.links import absolute_url
from routing.models import Rep

logger = logging.getLogger("calendars")
GOOGLE_SESSION = "calendars.google_oauth"
MS_SESSION = "calendars.ms_flow"
Provider = CalendarConnection.Provider


def _rep(request: HttpRequest) -> Rep | None:
    return Rep.objects.filter(user=request.user).first()


def _no_rep(request: HttpRequest) -> HttpResponse:
    return render(request, "calendars/no_rep.html", status=403)


def _callback_uri(name: str) -> str:
    """The redirect URI registered with the provider: on BASE_URL, the sub-path named once."""
    return absolute_url(f"calendars:{name}")


def _page(
    request: HttpRequest, rep: Rep, *, ics_form=None, roles_form=None, status: int = 200
) -> HttpResponse:
    conns = list(selectors.rep_connections(rep.pk))
    calendars = [c for conn in conns for c in conn.calendars.all()]
    for cal in calendars:
        cal.connection = next(conn for conn in conns if conn.pk == cal.connection_id)
    if roles_form is None:
        receiving = next((c.pk for c in calendars if c.receives_bookings), None)
        roles_form = CalendarRolesForm(
            calendars=calendars,
            initial={
                "blocks": [str(c.pk) for c in calendars if c.blocks_availability],
                "receives": str(receiving) if receiving else "",
            },
        )
    return render(
        request,
        "calendars/connections.html",
        {
            "rep": rep,
            "connections": conns,
            "calendars": calendars,
            "roles_form": roles_form,
            "ics_form": ics_form or IcsFeedForm(),
            "google_enabled": bool(settings.GOOGLE_CLIENT_ID),
            "microsoft_enabled": bool(settings.MS_CLIENT_ID),
            # a refused form, said at the top (role="alert"): its errors stood unannounced at the bottom
            "errors": " ".join(
                str(error)
                for form in (ics_form, roles_form)
                if form is not None and form.is_bound
                for errors in form.errors.values()
                for error in errors
            ),
        },
        status=status,
    )


@login_required
@require_GET
def connections(request: HttpRequest) -> HttpResponse:
    rep = _rep(request)
    return _page(request, rep) if rep else _no_rep(request)


def _after_connect(request: HttpRequest, connection: CalendarConnection) -> None:
    """List the new account's calendars now; sync and open push channels in the background, and (a
    reconnect) bring Baton's events in its calendars in line with bookings changed while it was away."""
    try:
        calendars = services.calendars_refresh(connection_id=connection.pk)
    except CalendarError as exc:
        messages.warning(request, f"Connected, but the calendars could not be listed yet: {exc.message}")
        return
    for cal in calendars:
        if cal.blocks_availability:
            request_sync(calendar_id=cal.pk)
            enqueue(watch_ensure_task, cal.pk)
    enqueue(connection_events_resync_task, connection.pk)
    messages.success(request, f"Connected {connection}.")


@login_required
@require_POST
def google_start(request: HttpRequest) -> HttpResponse:
    if _rep(request) is None:
        return _no_rep(request)
    try:
        url, state, verifier = google_auth.authorization_url(_callback_uri("google_callback"))
    except CalendarError as exc:
        messages.error(request, exc.message)
        return redirect("calendars:connections")
    request.session[GOOGLE_SESSION] = {"state": state, "verifier": verifier}
    return HttpResponseRedirect(url)


# Secrets out of the error reports mailed to ADMINS (config/logfilters.py): the account's tokens, the PKCE
# verifier and the ICS feed's secret URL. Innermost: Django finds the marks on the view's own frame.
@login_required
@require_GET
@sensitive_variables("secrets", "started")
def google_callback(request: HttpRequest) -> HttpResponse:
    rep = _rep(request)
    if rep is None:
        return _no_rep(request)
    started = request.session.pop(GOOGLE_SESSION, None)
    state = request.GET.get("state", "")
    if not started or not hmac.compare_digest(started["state"].encode(), state.encode()):
        return _error_page(
            request, rep, "This Google sign-in does not match one started here; please try again."
        )
    if request.GET.get("error") or not request.GET.get("code"):
        messages.error(request, "Google did not grant access to your calendar.")
        return redirect("calendars:connections")
    try:
        secrets = google_auth.exchange_code(
            _callback_uri("google_callback"),
            state=state,
            code_verifier=started["verifier"],
            code=request.GET["code"],
        )
        email = google_provider.GoogleProvider(secrets).account_email()
        connection = services.connection_create(
            rep=rep, provider=Provider.GOOGLE, secrets=secrets, account_email=email
        )
    except CalendarError as exc:
        messages.error(request, exc.message)
        return redirect("calendars:connections")
    _after_connect(request, connection)
    return redirect("calendars:connections")


@login_required
@require_POST
def microsoft_start(request: HttpRequest) -> HttpResponse:
    if _rep(request) is None:
        return _no_rep(request)
    try:
        flow = ms_auth.start_flow(_callback_uri("microsoft_callback"))
    except CalendarError as exc:
        messages.error(request, exc.message)
        return redirect("calendars:connections")
    request.session[MS_SESSION] = flow
    return HttpResponseRedirect(flow["auth_uri"])


@login_required
@require_GET
@sensitive_variables("secrets", "flow")
def microsoft_callback(request: HttpRequest) -> HttpResponse:
    rep = _rep(request)
    if rep is None:
        return _no_rep(request)
    flow = request.session.pop(MS_SESSION, None)
    state = request.GET.get("state", "")
    if not flow or not hmac.compare_digest(str(flow.get("state", "")).encode(), state.encode()):
        return _error_page(
            request, rep, "This Microsoft sign-in does not match one started here; please try again."
        )
    if request.GET.get("error"):
        messages.error(request, "Microsoft did not grant access to your calendar.")
        return redirect("calendars:connections")
    try:
        secrets, email = ms_auth.finish_flow(flow, request.GET.dict())
        connection = services.connection_create(
            rep=rep, provider=Provider.MICROSOFT, secrets=secrets, account_email=email
        )
    except CalendarError as exc:
        messages.error(request, exc.message)
        return redirect("calendars:connections")
    _after_connect(request, connection)
    return redirect("calendars:connections")


def _error_page(request: HttpRequest, rep: Rep, message: str) -> HttpResponse:
    messages.error(request, message)
    return _page(request, rep, status=400)


@login_required
@require_POST
@sensitive_post_parameters("url")
def ics_add(request: HttpRequest) -> HttpResponse:
    rep = _rep(request)
    if rep is None:
        return _no_rep(request)
    form = IcsFeedForm(request.POST)
    if form.is_valid():
        try:
            connection = services.ics_connect(rep=rep, url=form.cleaned_data["url"])
        except CalendarError as exc:
            form.add_error("url", exc.message)
        else:
            for cal in connection.calendars.filter(blocks_availability=True):
                request_sync(calendar_id=cal.pk)
            messages.success(request, f"Added the feed from {connection.account_email}.")
            return redirect("calendars:connections")
    return _page(request, rep, ics_form=form, status=400)


@login_required
@require_POST
def roles(request: HttpRequest) -> HttpResponse:
    rep = _rep(request)
    if rep is None:
        return _no_rep(request)
    calendars = list(Calendar.objects.filter(connection__rep=rep).select_related("connection"))
    form = CalendarRolesForm(request.POST, calendars=calendars)
    if form.is_valid():
        try:
            to_sync = services.calendar_roles_set(
                rep=rep, blocking_ids=form.cleaned_data["blocks"], receiving_id=form.cleaned_data["receives"]
            )
        except CalendarError as exc:
            form.add_error("receives", exc.message)
        else:
            for pk in to_sync:
                request_sync(calendar_id=pk)
            for cal in calendars:
                enqueue(watch_ensure_task, cal.pk)
            messages.success(request, "Saved your calendar choices.")
            return redirect("calendars:connections")
    return _page(request, rep, roles_form=form, status=400)


@login_required
@require_POST
def refresh(request: HttpRequest, connection_id: int) -> HttpResponse:
    rep = _rep(request)
    if rep is None:
        return _no_rep(request)
    connection = get_object_or_404(CalendarConnection, pk=connection_id, rep=rep)
    try:
        for cal in services.calendars_refresh(connection_id=connection.pk):
            if cal.blocks_availability:
                request_sync(calendar_id=cal.pk)
        messages.success(request, "Calendar list refreshed; a sync is on its way.")
    except CalendarError as exc:
        messages.error(request, exc.message)
    return redirect("calendars:connections")


@login_required
@require_POST
def disconnect(request: HttpRequest, connection_id: int) -> HttpResponse:
    rep = _rep(request)
    if rep is None:
        return _no_rep(request)
    connection = get_object_or_404(CalendarConnection, pk=connection_id, rep=rep)
    label = str(connection)
    services.connection_delete(connection=connection)
    messages.success(request, f"Disconnected {label}.")
    return redirect("calendars:connections")
