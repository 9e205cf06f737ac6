/*
 * Baton booking page (/book/<slug>) and manage page (/manage/<token>): plain JavaScript, no dependencies.
 * Configuration comes from the JSON in #baton-config (booking/presenters.py). This file holds the shared
 * helpers (API calls, field errors, time zones, date and time labels) as window.BatonBooking; picker.js adds
 * the time-zone + month + times picker; book-page.js and manage.js drive the two pages. See
 * docs/booking-page.md.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("baton-config").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December"];
  var WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

  // --- small helpers

  function show(el, visible) { if (el) el.hidden = !visible; }

  // The page-level notice (role=alert); ``focus`` moves keyboard focus to it.
  function message(text, kind, focus) {
    var box = $("message");
    box.textContent = text || "";
    box.className = "notice" + (kind ? " " + kind : "");
    show(box, !!text);
    if (text && focus) box.focus();
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function isoDate(y, m, d) { return y + "-" + pad(m + 1) + "-" + pad(d); }

  function dayLabel(iso) {
    var p = iso.split("-").map(Number);
    var weekday = WEEKDAYS[new Date(Date.UTC(p[0], p[1] - 1, p[2])).getUTCDay()];
    return weekday + " " + p[2] + " " + MONTHS[p[1] - 1] + " " + p[0];
  }

  // A slot's local wall time is in its ISO string (the API answers in the requested zone).
  function timeLabel(iso) { return iso.slice(11, 16); }

  // "UTC+01:00" from an ISO string's own offset ("Z": UTC+00:00).
  function offsetLabel(iso) {
    var offset = iso.slice(19).replace(/^\.\d+/, "");
    return "UTC" + (offset === "Z" || offset === "" ? "+00:00" : offset);
  }

  // The night the clocks go back, one wall time happens twice: such a start says which one it is.
  function ambiguous(iso, zone) {
    var when = Date.parse(iso);
    var wall = wallClock(iso, zone);
    if (isNaN(when) || !wall) return false;
    return [1800000, 3600000, 7200000].some(function (shift) { // Antarctica/Troll goes back two hours
      return wallClock(new Date(when - shift).toISOString(), zone) === wall ||
        wallClock(new Date(when + shift).toISOString(), zone) === wall;
    });
  }

  function randomKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    var a = new Uint8Array(16);
    window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return pad(b.toString(16)).replace(/^0(?=..)/, ""); }).join("");
  }

  function request(method, url, body, headers) {
    var options = { method: method, headers: Object.assign({ Accept: "application/json" }, headers || {}) };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { status: response.status, data: data || {} };
      });
    });
  }

  // --- field errors

  function clearErrors(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(".field-error"), function (el) {
      el.textContent = "";
      el.hidden = true;
    });
    Array.prototype.forEach.call((root || document).querySelectorAll("[aria-invalid]"), function (el) {
      el.removeAttribute("aria-invalid");
    });
  }

  function flatten(errors, prefix, out) {
    Object.keys(errors || {}).forEach(function (key) {
      var value = errors[key];
      var name = prefix ? prefix + "." + key : key;
      if (Array.isArray(value)) out[name] = value.join(" ");
      else if (value && typeof value === "object") flatten(value, name, out);
      else out[name] = String(value);
    });
    return out;
  }

  // Shows each error next to its field, focusing the first (not with ``keepFocus``: an embedded page the
  // visitor has not used yet); returns the messages that have no field on the page.
  function showErrors(errors, keepFocus) {
    var flat = flatten(errors, "", {});
    var orphans = [];
    var first = null;
    Object.keys(flat).forEach(function (name) {
      var el = document.querySelector('[data-error-for="' + name.replace(/"/g, "") + '"]');
      if (!el) { orphans.push(flat[name]); return; }
      el.textContent = flat[name];
      el.hidden = false;
      var field = el.parentNode.querySelector("input, select, textarea");
      if (field) {
        field.setAttribute("aria-invalid", "true");
        if (!first) first = field;
      }
    });
    if (first && !keepFocus) first.focus();
    return orphans;
  }

  // --- time zone

  var zones = Array.prototype.map.call(document.querySelectorAll("#zone-list option"), function (o) { return o.value; });
  var zoneSet = {};
  zones.forEach(function (z) { zoneSet[z] = true; });

  function detectZone() {
    var wanted = config.prefill && config.prefill.timezone;
    if (wanted && zoneSet[wanted]) return wanted;
    var detected = "";
    try { detected = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { detected = ""; }
    if (zoneSet[detected]) return detected;
    return "UTC";
  }

  // ``iso`` (an instant with any offset) as the wall clock of ``zone``: "YYYY-MM-DDTHH:MM" ("" if unreadable).
  // A link's start may be written in another offset than the page's zone (a CRM's UTC, a sender's own zone).
  function wallClock(iso, zone) {
    var when = Date.parse(iso);
    if (isNaN(when)) return "";
    try {
      var parts = {};
      new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(new Date(when))
        .forEach(function (p) { parts[p.type] = p.value; });
      return parts.year + "-" + parts.month + "-" + parts.day + "T" + parts.hour + ":" + parts.minute;
    } catch (e) {
      return "";
    }
  }

  // ``start`` (an instant with any offset) as a date and time of ``zone``, with its UTC offset when that wall
  // time happens twice (the night the clocks go back) or when the zone's name carries a number, which POSIX
  // names count the other way ("Etc/GMT-14" is fourteen hours ahead of UTC, "EST5EDT" five behind), as the
  // server's labels do (booking.presenters.zone_label).
  function chosenLabel(start, zone) {
    var local = wallClock(start, zone) || start;
    var offset = "";
    if (ambiguous(start, zone) || /\d/.test(zone)) {
      var minutes = Math.round((Date.parse(local.slice(0, 16) + ":00Z") - Date.parse(start)) / 60000);
      var sign = minutes < 0 ? "-" : "+";
      minutes = Math.abs(minutes);
      offset = ", UTC" + sign + pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60);
    }
    return dayLabel(local.slice(0, 10)) + ", " + timeLabel(local) + " (" + zone + offset + ")";
  }

  // --- the booking page's own

  // Embedded, the frame takes focus (scrolling the host page to it) only once the visitor has used it, and
  // only while it has the focus (they are in it, not back on the host page): a start preselected by the host
  // page's link, or a step that ends after the visitor went back to the host page, must not pull them away
  // from the page they read or the field they type in.
  function mayTakeFocus() {
    if (window.self === window.top) return true;
    var activation = navigator.userActivation;
    return document.hasFocus() && (!activation || activation.hasBeenActive);
  }

  // The confirmation's details could not be loaded (a deploy, a dropped connection), but the booking stands:
  // what it is for is built into ``target`` as the fragment has it: a heading to take focus, the time and
  // hosts, the manage link (a link, which opens even from inside an embedded widget).
  function fallbackConfirmation(target, booking) {
    var hosts = (booking.hosts || []).map(function (h) { return h.name; }).join(", ");
    var body = document.createElement("section");
    body.id = "confirmation-body";
    var heading = document.createElement("h2");
    heading.id = "confirmation-heading";
    heading.tabIndex = -1;
    heading.textContent = "You are booked";
    var when = document.createElement("p");
    when.textContent = chosenLabel(booking.start, booking.timezone) + (hosts ? " with " + hosts : "") + ".";
    var manage = document.createElement("p");
    manage.className = "manage";
    manage.textContent = "Need to change it? ";
    var link = document.createElement("a");
    link.id = "manage-link";
    link.href = booking.manage_url;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = booking.manage_url;
    manage.appendChild(link);
    body.appendChild(heading);
    body.appendChild(when);
    body.appendChild(manage);
    target.textContent = "";
    target.appendChild(body);
  }

  // picker.js adds ``Picker`` (it uses the date, time and zone helpers below)
  window.BatonBooking = { request: request, message: message, showErrors: showErrors,
    clearErrors: clearErrors, chosenLabel: chosenLabel, wallClock: wallClock, randomKey: randomKey, config: config,
    show: show, MONTHS: MONTHS, isoDate: isoDate, dayLabel: dayLabel, timeLabel: timeLabel, offsetLabel: offsetLabel,
    zoneSet: zoneSet, detectZone: detectZone, mayTakeFocus: mayTakeFocus, fallbackConfirmation: fallbackConfirmation };
})();
