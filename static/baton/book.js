/*
 * Baton booking page (/book/<slug>) and manage page (/manage/<token>): plain JavaScript, no dependencies.
 * Configuration comes from the JSON in #baton-config (booking/presenters.py). This file holds the shared
 * parts (API calls, field errors, the time-zone + month + times picker) as window.BatonBooking;
 * book-page.js and manage.js drive the two pages. See docs/booking-page.md.
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
    return [1800000, 3600000].some(function (shift) {
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

  // Shows each error next to its field; returns the messages that have no field on the page.
  function showErrors(errors) {
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
    if (first) first.focus();
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

  // --- the picker (month view + day's starts), shared by the booking and the manage page

  function Picker(onPick) {
    this.onPick = onPick;
    this.zone = detectZone();
    this.route = null;
    this.cache = {};
    this.selectedDay = null;
    this.selectedStart = null;
    this.byDay = {};
    this.pending = 0;
    var today = new Date();
    this.year = today.getFullYear();
    this.month = today.getMonth();
    var self = this;
    $("zone").value = this.zone;
    $("zone-name").textContent = this.zone;
    $("prev-month").addEventListener("click", function () { self.shiftMonth(-1); });
    $("next-month").addEventListener("click", function () { self.shiftMonth(1); });
    $("calendar-body").addEventListener("keydown", function (event) { self.arrowKey(event); });
    $("zone").addEventListener("change", function () { self.setZone($("zone").value.trim()); });
    $("zone").addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        self.setZone($("zone").value.trim());
      }
    });
  }

  Picker.prototype.setZone = function (zone) {
    var error = $("zone-error");
    if (!zoneSet[zone]) {
      error.textContent = "Unknown time zone: pick one from the list, e.g. Europe/Berlin.";
      error.hidden = false;
      $("zone").setAttribute("aria-invalid", "true");
      return;
    }
    error.hidden = true;
    $("zone").removeAttribute("aria-invalid");
    if (zone === this.zone) return;
    this.zone = zone;
    $("zone-name").textContent = zone;
    this.cache = {};
    this.byDay = {}; // nothing stale is offered while the new zone's times load
    this.selectedStart = null;
    this.drawMonth();
    $("times").textContent = "";
    var self = this;
    // the page may first act on the new zone (route again: rules may look at it), then the times load
    var before = this.onZone ? this.onZone(zone) : Promise.resolve(true);
    return before.then(function (ok) {
      if (ok === false) return null;
      return self.load().then(function (result) {
        if (self.afterZone) self.afterZone(zone);
        return result;
      });
    });
  };

  Picker.prototype.shiftMonth = function (delta) {
    var m = this.month + delta;
    this.year += Math.floor(m / 12);
    this.month = ((m % 12) + 12) % 12;
    this.selectedDay = null;
    this.byDay = {};
    this.load();
  };

  Picker.prototype.openOn = function (isoDay) {
    var p = isoDay.split("-").map(Number);
    this.year = p[0];
    this.month = p[1] - 1;
    this.selectedDay = isoDay;
  };

  Picker.prototype.today = function () {
    try {
      var parts = new Intl.DateTimeFormat("en-CA", { timeZone: this.zone, year: "numeric", month: "2-digit", day: "2-digit" })
        .format(new Date());
      return parts.slice(0, 10);
    } catch (e) {
      var d = new Date();
      return isoDate(d.getFullYear(), d.getMonth(), d.getDate());
    }
  };

  Picker.prototype.fetchMonth = function (force) {
    var today = this.today();
    var first = isoDate(this.year, this.month, 1);
    var last = isoDate(this.year, this.month, new Date(Date.UTC(this.year, this.month + 1, 0)).getUTCDate());
    var key = first + "|" + this.zone + "|" + (this.route || "");
    if (last < today) return Promise.resolve({ ok: true, slots: [] });
    if (!force && this.cache[key]) return Promise.resolve(this.cache[key]);
    delete this.cache[key]; // refreshed: a failed refresh leaves no stale month to come back to
    var start = first < today ? today : first;
    var url = config.api.slots + "?start=" + start + "&end=" + last + "&timezone=" + encodeURIComponent(this.zone);
    if (this.route) url += "&route=" + encodeURIComponent(this.route);
    var self = this;
    return request("GET", url).then(function (r) {
      var result = r.status === 200 ? { ok: true, slots: r.data.slots || [] } : { ok: false, status: r.status };
      if (result.ok) self.cache[key] = result;
      return result;
    });
  };

  // Loads the visible month; ``force`` bypasses the cache. Resolves when the month is drawn.
  Picker.prototype.load = function (force) {
    var self = this;
    var ticket = ++this.pending;
    $("month").setAttribute("aria-busy", "true");
    $("calendar-status").textContent = "Loading free times…";
    $("calendar-status").className = "status loading";
    $("times").textContent = "";
    $("times-status").textContent = this.selectedDay ? "Loading free times…" : "Pick a day with free times.";
    this.drawMonth();
    return this.fetchMonth(force).then(function (result) {
      if (ticket !== self.pending) return null;
      $("month").setAttribute("aria-busy", "false");
      $("calendar-status").className = "status";
      if (!result.ok) return self.failed("Could not load the free times (error " + result.status + ").", result);
      self.byDay = {};
      result.slots.forEach(function (slot) {
        var day = slot.start.slice(0, 10);
        (self.byDay[day] = self.byDay[day] || []).push(slot.start);
      });
      var days = Object.keys(self.byDay).sort();
      $("calendar-status").textContent = days.length
        ? days.length + (days.length === 1 ? " day" : " days") + " with free times in " + MONTHS[self.month] + "."
        : "No free times in " + MONTHS[self.month] + ". Try the next month.";
      if (self.selectedDay && !self.byDay[self.selectedDay]) {
        // keep the chosen day selected (it shows "no free times") only when it is in this month
        if (self.selectedDay.slice(0, 7) !== isoDate(self.year, self.month, 1).slice(0, 7)) self.selectedDay = null;
      }
      self.drawMonth();
      self.drawTimes();
      return result;
    }, function () {
      if (ticket !== self.pending) return null;
      $("month").setAttribute("aria-busy", "false");
      $("calendar-status").className = "status";
      return self.failed("Could not reach the server. Check your connection and try again.", { ok: false, status: 0 });
    });
  };

  // A month that could not be loaded offers nothing (not the times it had before a refresh) and says so,
  // with a button to load it again.
  Picker.prototype.failed = function (text, result) {
    var self = this;
    var retry = document.createElement("button");
    retry.type = "button";
    retry.className = "link";
    retry.textContent = "Try again";
    retry.addEventListener("click", function () { self.load(true); });
    $("calendar-status").textContent = text + " ";
    $("calendar-status").appendChild(retry);
    this.byDay = {};
    this.drawMonth();
    $("times").textContent = "";
    $("times-status").textContent = "The free times could not be loaded.";
    return result;
  };

  Picker.prototype.drawMonth = function () {
    $("month-label").textContent = MONTHS[this.month] + " " + this.year;
    var today = this.today();
    var thisMonth = isoDate(this.year, this.month, 1);
    var prev = $("prev-month");
    var hadFocus = document.activeElement === prev;
    prev.disabled = thisMonth.slice(0, 7) <= today.slice(0, 7);
    if (hadFocus && prev.disabled) $("next-month").focus(); // back in the first month: focus stays in the calendar
    var body = $("calendar-body");
    body.textContent = "";
    var firstWeekday = (new Date(Date.UTC(this.year, this.month, 1)).getUTCDay() + 6) % 7;
    var days = new Date(Date.UTC(this.year, this.month + 1, 0)).getUTCDate();
    var row = document.createElement("tr");
    var self = this;
    for (var blank = 0; blank < firstWeekday; blank++) row.appendChild(document.createElement("td"));
    for (var d = 1; d <= days; d++) {
      var iso = isoDate(this.year, this.month, d);
      var cell = document.createElement("td");
      var button = document.createElement("button");
      var count = (this.byDay[iso] || []).length;
      button.type = "button";
      button.className = "day" + (count ? " free" : "") + (iso === today ? " today" : "");
      button.textContent = String(d);
      button.dataset.date = iso;
      button.disabled = !count;
      button.setAttribute("aria-pressed", iso === this.selectedDay ? "true" : "false");
      button.setAttribute("aria-label", dayLabel(iso) + (count ? ", " + count + " free " + (count === 1 ? "time" : "times") : ", no free times"));
      button.addEventListener("click", (function (day) { return function () { self.pickDay(day); }; })(iso));
      cell.appendChild(button);
      row.appendChild(cell);
      if (row.children.length === 7) { body.appendChild(row); row = document.createElement("tr"); }
    }
    if (row.children.length) {
      while (row.children.length < 7) row.appendChild(document.createElement("td"));
      body.appendChild(row);
    }
  };

  // Arrow keys move between the days with free times (left/right: previous/next, up/down: a week).
  Picker.prototype.arrowKey = function (event) {
    var steps = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -7, ArrowDown: 7 }[event.key];
    var current = event.target && event.target.dataset && event.target.dataset.date;
    if (!steps || !current) return;
    event.preventDefault();
    var free = Array.prototype.filter.call(document.querySelectorAll("#calendar-body .day"), function (b) {
      return !b.disabled;
    });
    var day = Number(current.slice(8, 10));
    var target = null;
    free.forEach(function (b) {
      var d = Number(b.dataset.date.slice(8, 10));
      var ahead = steps > 0 ? d >= day + steps : d <= day + steps;
      if (!ahead) return;
      if (!target || Math.abs(d - day) < Math.abs(Number(target.dataset.date.slice(8, 10)) - day)) target = b;
    });
    if (target) target.focus();
  };

  Picker.prototype.pickDay = function (iso) {
    this.selectedDay = iso;
    Array.prototype.forEach.call(document.querySelectorAll("#calendar-body .day"), function (b) {
      b.setAttribute("aria-pressed", b.dataset.date === iso ? "true" : "false");
    });
    this.drawTimes();
    var first = document.querySelector("#times button");
    if (first) first.focus();
  };

  Picker.prototype.drawTimes = function () {
    var list = $("times");
    list.textContent = "";
    var iso = this.selectedDay;
    if (!iso) {
      $("times-heading").textContent = "Available times";
      $("times-status").textContent = "Pick a day with free times.";
      return;
    }
    var starts = this.byDay[iso] || [];
    var offsets = {};
    starts.forEach(function (s) { offsets[offsetLabel(s)] = true; });
    var twoClocks = Object.keys(offsets).length > 1; // a DST change day: say which offset each time has
    list.className = "time-list" + (twoClocks ? " with-offsets" : ""); // wider columns for the offsets
    $("times-heading").textContent = dayLabel(iso);
    $("times-status").textContent = starts.length
      ? starts.length + (starts.length === 1 ? " free time" : " free times") + " (" + this.zone + ")"
      : "No free times on this day.";
    var self = this;
    starts.forEach(function (start) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "time";
      var label = timeLabel(start) + (twoClocks ? " (" + offsetLabel(start) + ")" : "");
      button.textContent = timeLabel(start);
      if (twoClocks) { // the offset on a line of its own (book.css), the text still "02:00 (UTC+02:00)"
        var offset = document.createElement("span");
        offset.className = "offset";
        offset.textContent = " (" + offsetLabel(start) + ")";
        button.appendChild(offset);
      }
      button.dataset.start = start;
      button.setAttribute("aria-label", label + ", " + dayLabel(iso));
      button.addEventListener("click", function () { self.selectedStart = start; self.onPick(start); });
      item.appendChild(button);
      list.appendChild(item);
    });
  };

  // The nearest offered starts to ``wanted`` (an ISO instant) among the loaded month.
  Picker.prototype.nearest = function (wanted, limit) {
    var target = Date.parse(wanted);
    var all = [];
    var self = this;
    Object.keys(this.byDay).forEach(function (day) { all = all.concat(self.byDay[day]); });
    all.sort(function (a, b) { return Math.abs(Date.parse(a) - target) - Math.abs(Date.parse(b) - target); });
    return all.slice(0, limit);
  };

  Picker.prototype.find = function (wanted) {
    var target = Date.parse(wanted);
    var found = null;
    var self = this;
    Object.keys(this.byDay).forEach(function (day) {
      self.byDay[day].forEach(function (s) { if (Date.parse(s) === target) found = s; });
    });
    return found;
  };

  // Loads the first month with free times (this one or the next two), drawing each step.
  Picker.prototype.loadFirstFree = function () {
    var self = this;
    var tries = 0;
    function step() {
      return self.load().then(function (result) {
        if (result && result.ok && !Object.keys(self.byDay).length && tries < 2) {
          tries += 1;
          self.shiftMonthSilently();
          return step();
        }
        return result;
      });
    }
    return step();
  };

  Picker.prototype.shiftMonthSilently = function () {
    this.month += 1;
    if (this.month === 12) { this.month = 0; this.year += 1; }
  };

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
  // time happens twice (the night the clocks go back).
  function chosenLabel(start, zone) {
    var local = wallClock(start, zone) || start;
    var offset = "";
    if (ambiguous(start, zone)) {
      var minutes = Math.round((Date.parse(local.slice(0, 16) + ":00Z") - Date.parse(start)) / 60000);
      var sign = minutes < 0 ? "-" : "+";
      minutes = Math.abs(minutes);
      offset = ", UTC" + sign + pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60);
    }
    return dayLabel(local.slice(0, 10)) + ", " + timeLabel(local) + " (" + zone + offset + ")";
  }

  window.BatonBooking = { Picker: Picker, request: request, message: message, showErrors: showErrors,
    clearErrors: clearErrors, chosenLabel: chosenLabel, wallClock: wallClock, randomKey: randomKey, config: config,
    show: show };
})();
