/*
 * The booking page flow: [about you + questions → route] → pick a time → confirm → book → confirmation.
 * Uses window.BatonBooking from book.js and picker.js. See docs/booking-page.md.
 */
(function () {
  "use strict";

  var B = window.BatonBooking;
  var config = B.config;
  var mayTakeFocus = B.mayTakeFocus; // embedded, no focus taken from a host page the visitor has not left
  var $ = function (id) { return document.getElementById(id); };
  var questions = config.questions || [];
  var form = $("booking-form");
  var submit = $("submit");
  var step = null;
  var selected = null;
  var inFlight = false;
  // The booking request's Idempotency-Key: one per distinct body (``body``: the last one sent with it), except
  // while ``sent`` lists bodies sent with it whose outcome is unknown (any of them may have booked): then the
  // key goes with every body, whose answer tells what the key booked (``book``).
  var attempt = { body: null, key: null, sent: [] };
  var LOST = "Could not reach the server. Check your connection and press the button again.";
  var routed = { payload: null };
  var wantedStart = null; // a link's start that was taken: its nearest others are listed (``showAlternatives``)
  // Routing rules may look at the e-mail, answers, UTM, time zone or country: with rules (or questions) the
  // page asks who the prospect is first, then routes; without either it opens the picker at once.
  var routing = questions.length > 0 || !!config.routing;

  function setStep(name) {
    step = name;
    $("app").dataset.step = name;
    B.show($("step-about"), name === "about" || name === "confirm");
    B.show($("about-actions"), name === "about");
    B.show($("picker"), name === "pick");
    B.show($("step-confirm"), name === "confirm");
    B.show($("step-note"), name === "confirm");
    B.show($("disqualified"), name === "disqualified");
    B.show($("confirmation"), name === "done");
    if (name !== "pick") B.show($("alternatives"), false);
  }

  // --- answers and client-side checks

  function field(key) { return form.querySelector('[data-question="' + key + '"]'); }

  function answers() {
    var out = {};
    questions.forEach(function (q) {
      var box = field(q.key);
      if (!box) return;
      var type = box.dataset.type;
      if (type === "multiselect") {
        var values = Array.prototype.map.call(box.querySelectorAll("input:checked"), function (i) { return i.value; });
        if (values.length) out[q.key] = values;
      } else if (type === "checkbox") {
        // an unticked box is the answer false (docs/routing-rules.md: ``equals false`` matches it)
        out[q.key] = box.querySelector("input").checked;
      } else {
        var value = box.querySelector("input, select, textarea").value.trim();
        if (value === "") return;
        out[q.key] = type === "number" && isFinite(Number(value)) ? Number(value) : value;
      }
    });
    return out;
  }

  function aboutValid() {
    var errors = {};
    var name = $("f-name");
    var email = $("f-email");
    if (!name.value.trim()) errors.name = ["Please enter your name."];
    if (!email.value.trim()) errors.email = ["Please enter your email address."];
    else if (!email.checkValidity()) errors.email = ["Enter a valid email address."];
    var given = answers();
    var answerErrors = {};
    questions.forEach(function (q) {
      var box = field(q.key);
      if (!box) return;
      // a required box (consent) must be ticked, as the API says
      if (q.required && (given[q.key] === undefined || given[q.key] === false)) {
        answerErrors[q.key] = ["This question is required."];
      }
      var input = box.querySelector("input, select, textarea");
      if (input && input.validity && input.validity.badInput) answerErrors[q.key] = ["Expected a number."];
    });
    if (Object.keys(answerErrors).length) errors.answers = answerErrors;
    if (!Object.keys(errors).length) return true;
    B.showErrors(errors);
    return false;
  }

  // --- routing rules (POST …/route; a 404 means no rules endpoint: book without a route)

  function routeIfNeeded() {
    if (!routing || !config.api.route) return Promise.resolve(true);
    var payload = { email: $("f-email").value.trim(), name: $("f-name").value.trim(),
      timezone: picker.zone, answers: answers(), utm: config.utm || {} };
    // the zone too: territory rules look at it (and at the country it implies)
    var key = JSON.stringify([payload.email, payload.name, payload.answers, payload.utm, payload.timezone]);
    if (routed.payload === key) return Promise.resolve(true);
    return B.request("POST", config.api.route, payload).then(function (r) {
      if (r.status === 200 && r.data.disqualified) {
        disqualify(r.data.message || "Thank you — we will be in touch by email.");
        return false;
      }
      if (r.status === 200) {
        picker.route = r.data.route || null;
        picker.cache = {};
      } else if (r.status === 404 || r.status === 405) {
        picker.route = null;
      } else if (r.status === 400) {
        if (step !== "about" && step !== "confirm") setStep("about"); // the fields the errors are about
        var orphans = B.showErrors(r.data.errors || {}, !mayTakeFocus());
        if (orphans.length) B.message(orphans.join(" "), "error", mayTakeFocus());
        return false;
      } else {
        // a page that asked nothing (rules only, the prospect named by the link) routed on its own
        B.message((questions.length ? "Could not check your answers" : "Could not load this booking page's times") +
          " (error " + r.status + "). Please try again.", "error", mayTakeFocus());
        return false;
      }
      routed.payload = key;
      return true;
    }, function () {
      // embedded and routed on load, the notice takes no focus from the host page (``mayTakeFocus``)
      B.message("Could not reach the server. Check your connection and try again.", "error", mayTakeFocus());
      return false;
    });
  }

  // Disqualified (at Continue, or by a zone changed after routing): the step holding the focused control is
  // hidden, so the notice takes focus (Tab goes on from there). Its text is set once it is shown: a live
  // region filled while hidden is not announced.
  function disqualify(text) {
    var box = $("disqualified");
    box.textContent = "";
    setStep("disqualified");
    if (mayTakeFocus()) box.focus();
    window.setTimeout(function () { box.textContent = text; }, 100);
  }

  // --- steps

  function onPick(start) {
    selected = start;
    wantedStart = null;
    B.message("");
    B.clearErrors(form);
    $("chosen-time").textContent = B.chosenLabel(start, picker.zone);
    setStep("confirm");
    if (mayTakeFocus()) $("confirm-heading").focus();
  }

  function showAlternatives(wanted) {
    wantedStart = wanted;
    var list = $("alternatives");
    list.textContent = "";
    var nearest = picker.nearest(wanted, 5);
    // ``chosenLabel`` reads the instant in the page's zone, whatever the link's offset
    B.message(nearest.length
      ? "The time you chose (" + B.chosenLabel(wanted, picker.zone) + ") is no longer available. The nearest other times:"
      : "The time you chose is no longer available. " + (config.no_times ? B.Picker.NO_TIMES : "Please pick another time."),
      "warning", mayTakeFocus());
    nearest.forEach(function (start) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "time";
      button.textContent = B.chosenLabel(start, picker.zone);
      button.dataset.start = start;
      button.addEventListener("click", function () { onPick(start); });
      item.appendChild(button);
      list.appendChild(item);
    });
    B.show(list, nearest.length > 0);
    // its day is shown, focus left on the notice (the list follows it): not moved on to the day's times
    if (nearest.length) picker.pickDay(nearest[0].slice(0, 10), true);
  }

  // A link's start, its month open: chosen if still free, else its nearest others are listed. If the month
  // could not be loaded, nothing was found taken: the calendar says so, and its Try again looks again.
  function openStart(wanted, force) {
    return picker.load(force, function () { openStart(wanted, true); }).then(function (result) {
      if (!result || !result.ok) return result; // failed (Try again is offered), or replaced by another load
      var found = picker.find(wanted);
      if (found) {
        picker.selectedDay = found.slice(0, 10);
        picker.drawMonth();
        picker.drawTimes();
        onPick(found);
      } else if (!picker.nearest(wanted, 1).length) {
        // nothing left in its month: the first free month after it (none past the horizon)
        if (!picker.atLastMonth()) picker.shiftMonthSilently();
        return picker.loadFirstFree().then(function () { showAlternatives(wanted); });
      } else {
        showAlternatives(wanted);
      }
      return result;
    });
  }

  function startPicker() {
    setStep("pick");
    var prefill = config.prefill || {};
    if (prefill.start) {
      var wanted = prefill.start;
      prefill.start = ""; // only the first time through
      var day = (B.wallClock(wanted, picker.zone) || wanted).slice(0, 10); // its date in the page's zone
      if (day < picker.today()) {
        // a link clicked late: its month is over; the nearest free times are from now on
        return picker.loadFirstFree().then(function () { showAlternatives(wanted); });
      }
      picker.openOn(day);
      return openStart(wanted, false);
    }
    if (prefill.date) {
      picker.openOn(prefill.date);
      return picker.load();
    }
    return picker.loadFirstFree();
  }

  function busy(on) {
    inFlight = on;
    submit.disabled = on;
    submit.textContent = on ? "Booking…" : "Book this time";
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function bookingBody() {
    var body = { start: selected, name: $("f-name").value.trim(), email: $("f-email").value.trim(),
      timezone: picker.zone, answers: answers(), note: $("f-note").value.trim(), utm: config.utm || {} };
    if (picker.route) body.route = picker.route;
    if (config.visitor) body.visitor = config.visitor;
    return body;
  }

  // What the answer ``r`` to the body ``text`` tells of the key (``attempt.sent``). A server error may come
  // after the booking was made (a 500, a proxy's 502 or 504; not a 503 ``unavailable``: nothing was booked):
  // ``text`` may have booked. A request turned away before its key was looked at (429, 503, ``try_again``)
  // tells nothing. Any other answer says ``text`` did not book (a stored key replays its own body, even one
  // refused now): ``sent`` loses it (the key may still have booked another).
  function noteAnswer(r, text) {
    var others = attempt.sent.filter(function (t) { return t !== text; });
    if (r.status >= 500 && r.data.code !== "unavailable") attempt.sent = others.concat([text]);
    else if (!(r.status >= 500 || r.status === 429 || r.data.code === "try_again")) attempt.sent = others;
  }

  function failureText(r) {
    if (r.status === 429) return "Too many attempts. Please wait " + (r.data.retry_after || 60) + " seconds and try again.";
    return (r.data.detail || "Something went wrong") + " (error " + r.status + "). Please try again.";
  }

  // The key booked a body sent with it earlier, not the one just sent (``idempotency_key_reused``): the
  // bodies whose outcome was unknown (``list``) are sent again with it, the latest first, until the server
  // replays its booking (another 422: not that one). The prospect is booked once, with the details sent
  // earlier, and told so; any other answer leaves the key as it was (the next press asks again).
  function replaySent(list) {
    var headers = { "Idempotency-Key": attempt.key };
    return B.request("POST", config.api.bookings, JSON.parse(list[list.length - 1]), headers).then(function (r) {
      if (r.status === 422 && r.data.code === "idempotency_key_reused" && list.length > 1) return replaySent(list.slice(0, -1));
      busy(false);
      if (r.status === 201 || r.status === 200) return done(r.data, true);
      B.message(failureText(r), "error", true);
    }, function () {
      busy(false);
      B.message(LOST, "error", true);
    });
  }

  function book(retried) {
    var body = bookingBody();
    var text = JSON.stringify(body);
    // a key that may have booked goes with the body as it is now, never the old one sent again: if the
    // key booked, the server refuses this body (422, then the booking is replayed); if not, this one books
    if (text !== attempt.body && !attempt.sent.length) attempt = { body: text, key: B.randomKey(), sent: [] };
    attempt.body = text;
    var others = attempt.sent.filter(function (t) { return t !== text; });
    busy(true);
    return B.request("POST", config.api.bookings, body, { "Idempotency-Key": attempt.key }).then(function (r) {
      if (r.status === 422 && r.data.code === "idempotency_key_reused" && others.length) return replaySent(others);
      busy(false);
      noteAnswer(r, text);
      if (r.status === 201 || r.status === 200) return done(r.data);
      if (r.status === 400 && r.data.errors && r.data.errors.route && !retried) {
        routed.payload = null; // the route token expired or no longer fits: route again, then retry once
        return routeIfNeeded().then(function (ok) { return ok ? book(true) : null; });
      }
      if (r.status === 400 && r.data.errors && r.data.errors.start && Object.keys(r.data.errors).length === 1) {
        // the time stopped being bookable meanwhile (minimum notice passed, hours changed): as a taken one
        // (a field error may come before the key is looked at: a key that may have booked is kept)
        if (!attempt.sent.length) attempt = { body: null, key: null, sent: [] };
        B.message(r.data.errors.start.join(" ") + " The free times are refreshed — please pick another.", "warning", true);
        picker.selectedDay = selected.slice(0, 10);
        selected = null;
        setStep("pick");
        return picker.load(true);
      }
      if (r.status === 400 && r.data.errors) {
        var orphans = B.showErrors(r.data.errors);
        B.message(orphans.length ? orphans.join(" ") : "Please check the highlighted fields.", "error", !!orphans.length);
        return null;
      }
      if (r.status === 409 && r.data.code === "slot_unavailable") {
        // refused after the key was looked at (a key that booked is replayed, or a 422): it booked nothing
        attempt = { body: null, key: null, sent: [] };
        B.message("Sorry, that time was just taken by someone else. The free times are refreshed — please pick another.", "warning", true);
        picker.selectedDay = selected.slice(0, 10);
        selected = null;
        setStep("pick");
        return picker.load(true);
      }
      if (r.status === 422) attempt = { body: null, key: null, sent: [] };
      B.message(failureText(r), "error", true);
      return null;
    }, function () {
      busy(false); // the key is kept: a retry cannot book twice, even with a field changed (``attempt``)
      if (attempt.sent.indexOf(text) < 0) attempt.sent.push(text);
      B.message(LOST, "error", true);
    });
  }

  // A booked link's ``start`` leaves the address: a reload (or Back) then opens the picker afresh instead of
  // saying the prospect's own, just-booked time "is no longer available".
  function forgetStart() {
    try {
      var url = new URL(window.location.href);
      if (!url.searchParams.has("start")) return;
      url.searchParams.delete("start");
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    } catch (e) { /* an old browser keeps the address */ }
  }

  // The confirmation is shown complete (fragment loaded), so its height is final when it appears.
  // ``earlier``: booked by a body sent earlier (``replaySent``), not by the form as it is now.
  function done(booking, earlier) {
    // booked: nothing more is submitted, though the details are still loading (an Enter in a field
    // submitted the form again, and the host page heard "baton:booked" twice)
    inFlight = true;
    B.message("");
    forgetStart();
    var detail = { id: booking.id, start: booking.start, hosts: booking.hosts || [] };
    window.dispatchEvent(new CustomEvent("baton:booked", { detail: detail }));
    submit.disabled = true;
    submit.textContent = "Booked — loading the details…";
    var target = $("confirmation");
    // the address comes from the page (config.confirmation, "__token__" in place of the token): under a
    // sub-path a root-absolute "/manage/…" left Baton
    var url = config.confirmation.replace("__token__", encodeURIComponent(booking.manage_token));
    return fetch(url)
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) { target.innerHTML = html; }, function () { B.fallbackConfirmation(target, booking); })
      .then(function () {
        setStep("done");
        var heading = $("confirmation-heading");
        if (heading) heading.focus();
        if (earlier) B.message("You were booked with the details you sent first; your later changes were not sent.", "warning");
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (inFlight) return;
    B.message("");
    B.clearErrors(form);
    if (step === "about") {
      if (!aboutValid()) return;
      var button = $("about-continue");
      button.disabled = true;
      button.textContent = "Checking…";
      routeIfNeeded().then(function (ok) {
        button.disabled = false;
        button.textContent = "Continue";
        if (!ok) return;
        startPicker();
        // the step changed under the (now hidden) button: focus its heading, as at every other step
        if (mayTakeFocus()) $("picker-heading").focus();
      });
    } else if (step === "confirm") {
      if (!selected || !aboutValid()) return;
      busy(true);
      // routed first (the details may have changed since): a key that may have booked goes with the new body
      routeIfNeeded().then(function (ok) {
        busy(false);
        if (ok) book(false);
      });
    }
  });

  $("change-time").addEventListener("click", function () {
    setStep("pick");
    var current = document.querySelector('#times button[data-start="' + selected + '"]') || $("zone");
    current.focus();
  });

  var picker = new B.Picker(onPick);
  // a zone changed after routing: route again first (its times are the new route's), then the nearest
  // times of a taken link are listed again in the new zone
  picker.onZone = function () { return routed.payload ? routeIfNeeded() : Promise.resolve(true); };
  picker.afterZone = function () { if (wantedStart && step === "pick") showAlternatives(wantedStart); };
  $("f-name").value = (config.prefill && config.prefill.name) || "";
  $("f-email").value = (config.prefill && config.prefill.email) || "";
  if (!routing) {
    startPicker();
  } else if (!questions.length && $("f-name").value.trim() && $("f-email").value.trim() &&
      $("f-email").checkValidity()) {
    // rules but nothing to ask: a link that names the prospect routes at once
    setStep("about");
    routeIfNeeded().then(function (ok) { if (ok) startPicker(); });
  } else {
    setStep("about");
    // nothing can be booked (config.no_times): said before the prospect fills in the form for nothing
    if (config.no_times) B.message(B.Picker.NO_TIMES, "warning");
  }
})();
