/*
 * The manage page (/manage/<token>): reschedule with the same picker as the booking page, or cancel with
 * an optional reason, both through the booking API. Uses window.BatonBooking from book.js and picker.js.
 */
(function () {
  "use strict";

  var B = window.BatonBooking;
  var config = B.config;
  var $ = function (id) { return document.getElementById(id); };
  var picker = null;
  var selected = null;
  var inFlight = false;

  var LEAVING = {}; // what a change's handler returns once the page is being replaced

  function reloadWith(changed) {
    window.location.assign(window.location.pathname + "?changed=" + changed);
    return LEAVING;
  }

  // The booking changed since this page was loaded (cancelled in another tab or by the host, started, no
  // longer confirmed): the API refuses with 409 and says why; or it is gone (deleted by an admin, purged):
  // a 404, the link is no longer valid. Say it (focused, so it is read), offer nothing more, and show a
  // cancelled booking as cancelled; the page stays (a reload would drop the message and the focus). True if
  // it was such a refusal.
  var GONE = { booking_already_cancelled: true, booking_not_active: true, booking_in_past: true };

  function gone(status, body) {
    body = body || {};
    var deleted = status === 404;
    if (!deleted && (status !== 409 || !Object.prototype.hasOwnProperty.call(GONE, body.code))) return false;
    B.message(deleted ? "This link is no longer valid: the booking no longer exists."
      : body.detail || "This booking can no longer be changed.", "error", true);
    B.show($("app"), false); // no picker, no cancel form
    if (deleted || body.code === "booking_already_cancelled") {
      // nothing to add to a calendar any more
      B.show($("add-heading"), false);
      B.show(document.querySelector(".add-calendar"), false);
    }
    if (body.code === "booking_already_cancelled") {
      var badge = document.createElement("strong");
      badge.className = "badge cancelled";
      badge.textContent = "Cancelled";
      $("booking-status").textContent = "";
      $("booking-status").appendChild(badge);
    }
    return true;
  }

  function showPicker() {
    B.show($("step-confirm"), false);
    B.show($("picker"), true);
    if ($("reschedule-open")) $("reschedule-open").setAttribute("aria-expanded", "true");
    if (!picker) {
      picker = new B.Picker(onPick);
      picker.onFailure = function (result) { return gone(result.status, result); };
      if (config.prefill && config.prefill.date) picker.openOn(config.prefill.date);
      picker.load().then(function (result) {
        if (result && result.ok && !Object.keys(picker.byDay).length) picker.loadFirstFree();
      });
    }
  }

  function onPick(start) {
    selected = start;
    B.message("");
    B.clearErrors($("step-confirm"));
    $("chosen-time").textContent = B.chosenLabel(start, picker.zone);
    B.show($("picker"), false);
    B.show($("step-confirm"), true);
    $("confirm-heading").focus();
  }

  // The chosen time was refused: say so (focused), back to its day in the picker with fresh free times.
  function refreshAfterRefusal(text) {
    B.message(text + " The free times are refreshed — please pick another.", "warning", true);
    picker.selectedDay = selected.slice(0, 10);
    selected = null;
    showPicker();
    return picker.load(true);
  }

  function fail(r, fallback) {
    if (r.status === 400 && r.data.errors) {
      var orphans = B.showErrors(r.data.errors);
      if (orphans.length) B.message(orphans.join(" "), "error", true);
      return;
    }
    if (r.status === 429) {
      B.message("Too many attempts. Please wait " + (r.data.retry_after || 60) + " seconds.", "error", true);
      return;
    }
    B.message((r.data && r.data.detail) || fallback + " (error " + r.status + ").", "error", true);
  }

  // Runs a change with its button disabled (and nothing else sent) until it is answered; once it succeeded
  // and the page is being replaced (``LEAVING``), it stays so: a second click would send the change again.
  function guard(button, label, run) {
    if (inFlight) return;
    inFlight = true;
    var text = button.textContent;
    button.disabled = true;
    button.textContent = label;
    run().then(function (outcome) {
      if (outcome === LEAVING) return;
      inFlight = false;
      button.disabled = false;
      button.textContent = text;
    }, function () {
      inFlight = false;
      button.disabled = false;
      button.textContent = text;
      B.message("Could not reach the server. Check your connection and try again.", "error", true);
    });
  }

  if ($("reschedule-open")) {
    $("reschedule-open").addEventListener("click", function () {
      B.show($("cancel-form"), false);
      if ($("cancel-open")) $("cancel-open").setAttribute("aria-expanded", "false");
      showPicker();
      $("picker-heading").focus();
    });
    $("change-time").addEventListener("click", function () {
      showPicker();
      $("zone").focus();
    });
    $("reschedule-submit").addEventListener("click", function () {
      var button = this;
      guard(button, "Moving…", function () {
        var body = { start: selected, timezone: picker.zone };
        return B.request("POST", config.api.reschedule, body).then(function (r) {
          if (r.status === 200) return reloadWith("rescheduled");
          if (gone(r.status, r.data)) return null;
          if (r.status === 409 && r.data.code === "slot_unavailable") {
            return refreshAfterRefusal("Sorry, that time was just taken.");
          }
          var errors = (r.status === 400 && r.data.errors) || {};
          if (errors.start && Object.keys(errors).length === 1) {
            // the time stopped being bookable meanwhile (minimum notice passed, hours changed): as a taken one
            return refreshAfterRefusal([].concat(errors.start).join(" "));
          }
          return fail(r, "Could not move the booking");
        });
      });
    });
  }

  if ($("cancel-open")) {
    $("cancel-open").addEventListener("click", function () {
      B.show($("picker"), false);
      B.show($("step-confirm"), false);
      if ($("reschedule-open")) $("reschedule-open").setAttribute("aria-expanded", "false");
      B.show($("cancel-form"), true);
      this.setAttribute("aria-expanded", "true");
      $("f-reason").focus();
    });
    $("cancel-form").addEventListener("submit", function (event) {
      event.preventDefault();
      B.clearErrors($("cancel-form"));
      guard($("cancel-submit"), "Cancelling…", function () {
        return B.request("POST", config.api.cancel, { reason: $("f-reason").value.trim() }).then(function (r) {
          if (r.status === 200) return reloadWith("cancelled");
          if (gone(r.status, r.data)) return null;
          return fail(r, "Could not cancel the booking");
        });
      });
    });
  }
})();
