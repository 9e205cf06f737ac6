/*
 * The time-zone + month + times picker of the booking page and the manage page (window.BatonBooking.Picker):
 * the month grid of days with free times (GET the slots API per month, cached per month + zone + route),
 * the chosen day's starts, month navigation between today and the booking horizon. Uses the helpers of
 * book.js (loaded before it). See docs/booking-page.md.
 */
(function () {
  "use strict";

  var B = window.BatonBooking;
  var config = B.config;
  var $ = function (id) { return document.getElementById(id); };
  var MONTHS = B.MONTHS;
  var isoDate = B.isoDate;
  var dayLabel = B.dayLabel;
  var timeLabel = B.timeLabel;
  var offsetLabel = B.offsetLabel;
  var request = B.request;
  var wallClock = B.wallClock;
  var zoneSet = B.zoneSet;
  var detectZone = B.detectZone;
  // the server knows no month can have a time (config.no_times: a group pool's role without an active
  // member, zones that never share a start on the slot grid): said plainly, not "Try the next month"
  var NO_TIMES = "No times can be booked for this meeting right now.";

  function Picker(onPick) {
    this.onPick = onPick;
    this.zone = detectZone();
    this.route = null;
    this.cache = {};
    this.selectedDay = null;
    this.selectedStart = null;
    this.byDay = {};
    this.pending = 0;
    this.zoneFailed = false; // the page could not act on the zone (routing failed): entering it again retries
    // starts are offered before this instant (now + the meeting type's horizon): an instant, not a date, so
    // the last month with times follows the zone (the horizon's date in Tokyo is not the one in Berlin)
    this.until = Date.parse(config.bookable_until || "");
    this.openOn(this.today(), true);
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
    if (zone === this.zone && !this.zoneFailed) return;
    this.zone = zone;
    $("zone-name").textContent = zone;
    this.cache = {};
    this.byDay = {}; // nothing stale is offered while the new zone's times load
    this.selectedStart = null;
    // a month that is over in the new zone (31 January in Berlin is 1 February in Kiritimati) has nothing:
    // the zone's own current month opens instead; one past the horizon there, the horizon's month
    var month = isoDate(this.year, this.month, 1).slice(0, 7);
    var moveTo = month < this.today().slice(0, 7) ? this.today() : "";
    var last = this.lastDay();
    if (last && month > last.slice(0, 7)) moveTo = last;
    if (moveTo) {
      this.openOn(moveTo, true);
      this.selectedDay = null; // it was in the month left
    }
    return this.zoneChanged(zone);
  };

  // The page may first act on the new zone (route again: rules may look at it), then the times load: the
  // first month with free times unless a day is selected. Until then no month's count is claimed; if the
  // page could not act on it, the calendar says so with Try again (doing both again).
  Picker.prototype.zoneChanged = function (zone) {
    var self = this;
    var ticket = ++this.pending; // a month of the old zone still loading is not drawn
    this.busy();
    var before = this.onZone ? this.onZone(zone) : Promise.resolve(true);
    return before.then(function (ok) {
      if (ticket !== self.pending) return null;
      if (ok === false) {
        self.zoneFailed = true;
        return self.failed("Could not load the free times for " + zone + ".", { ok: false, status: 0 }, function () {
          self.zoneChanged(zone);
        });
      }
      self.zoneFailed = false;
      return (self.selectedDay ? self.load() : self.loadFirstFree()).then(function (result) {
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

  // Shows the month of ``isoDay`` with that day selected (only the month with ``monthOnly``).
  Picker.prototype.openOn = function (isoDay, monthOnly) {
    var p = isoDay.split("-").map(Number);
    this.year = p[0];
    this.month = p[1] - 1;
    if (!monthOnly) this.selectedDay = isoDay;
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

  // The last local date (in the page's zone) that can have a start: the horizon's, "" if the page has none.
  Picker.prototype.lastDay = function () {
    return isNaN(this.until) ? "" : wallClock(new Date(this.until - 1).toISOString(), this.zone).slice(0, 10);
  };

  // No later month can have a start: the visible one holds the horizon (or is past it).
  Picker.prototype.atLastMonth = function () {
    var last = this.lastDay();
    return !!last && isoDate(this.year, this.month, 1).slice(0, 7) >= last.slice(0, 7);
  };

  Picker.prototype.fetchMonth = function (force) {
    var today = this.today();
    var first = isoDate(this.year, this.month, 1);
    var last = isoDate(this.year, this.month, new Date(Date.UTC(this.year, this.month + 1, 0)).getUTCDate());
    var key = first + "|" + this.zone + "|" + (this.route || "");
    var horizon = this.lastDay();
    // a month over, or wholly past the horizon, has nothing: the server is not asked
    if (last < today || (horizon && first > horizon)) return Promise.resolve({ ok: true, slots: [] });
    if (!force && this.cache[key]) return Promise.resolve(this.cache[key]);
    delete this.cache[key]; // refreshed: a failed refresh leaves no stale month to come back to
    var start = first < today ? today : first;
    var url = config.api.slots + "?start=" + start + "&end=" + last + "&timezone=" + encodeURIComponent(this.zone);
    if (this.route) url += "&route=" + encodeURIComponent(this.route);
    var self = this;
    return request("GET", url).then(function (r) {
      var result = r.status === 200 ? { ok: true, slots: r.data.slots || [] }
        : { ok: false, status: r.status, code: r.data.code || "", detail: r.data.detail || "",
          retry_after: r.data.retry_after || null };
      if (result.ok) self.cache[key] = result;
      return result;
    });
  };

  // Loads the visible month; ``force`` bypasses the cache. Resolves when the month is drawn (with the result:
  // ``ok`` false if it could not be loaded; null if another load replaced this one).
  // The page may handle a refusal itself (``onFailure(result)`` returns true: the manage page of a booking
  // cancelled meanwhile); any other failure is shown in the calendar with Try again (which runs ``again``
  // if given, else loads the month again).
  Picker.prototype.load = function (force, again) {
    var self = this;
    var ticket = ++this.pending;
    this.busy();
    return this.fetchMonth(force).then(function (result) {
      if (ticket !== self.pending) return null;
      $("month").setAttribute("aria-busy", "false");
      $("calendar-status").className = "status";
      if (!result.ok && self.onFailure && self.onFailure(result)) return result;
      if (!result.ok) return self.failed(failureText(result), result, again);
      self.byDay = {};
      result.slots.forEach(function (slot) {
        var day = slot.start.slice(0, 10);
        (self.byDay[day] = self.byDay[day] || []).push(slot.start);
      });
      var days = Object.keys(self.byDay).sort();
      $("calendar-status").textContent = days.length
        ? days.length + (days.length === 1 ? " day" : " days") + " with free times in " + MONTHS[self.month] + "."
        : config.no_times ? NO_TIMES
        : "No free times in " + MONTHS[self.month] + "." + (self.atLastMonth() ? "" : " Try the next month.");
      if (self.selectedDay && !self.byDay[self.selectedDay]) {
        // keep the chosen day selected (it shows "no free times") only when it is in this month
        if (self.selectedDay.slice(0, 7) !== isoDate(self.year, self.month, 1).slice(0, 7)) self.selectedDay = null;
      }
      self.drawMonth();
      self.drawTimes();
      return result;
    }, function () {
      if (ticket !== self.pending) return null;
      return self.failed("Could not reach the server. Check your connection and try again.", { ok: false, status: 0 },
        again);
    });
  };

  // What a month that could not be loaded says: how long to wait when refused for too many requests (as the
  // booking request does), the server's own words for a 503 (briefly unavailable), else the error's number.
  function failureText(result) {
    if (result.status === 429) {
      return "Too many requests — please wait " + (result.retry_after ? result.retry_after + " seconds" : "a minute") +
        ", then try again.";
    }
    if (result.status === 503 && result.detail) return "Could not load the free times. " + result.detail;
    return "Could not load the free times (error " + result.status + ").";
  }

  // While a month (or the page's work on a new zone) loads: no free day offered, no count claimed.
  Picker.prototype.busy = function () {
    $("month").setAttribute("aria-busy", "true");
    $("calendar-status").textContent = "Loading free times…";
    $("calendar-status").className = "status loading";
    $("times").textContent = "";
    $("times-status").textContent = this.selectedDay ? "Loading free times…" : "Pick a day with free times.";
    this.drawMonth();
  };

  // A month that could not be loaded offers nothing (not the times it had before a refresh) and says so,
  // with a button to load it again (or to run ``again``).
  Picker.prototype.failed = function (text, result, again) {
    var self = this;
    var retry = document.createElement("button");
    retry.type = "button";
    retry.className = "link";
    retry.textContent = "Try again";
    retry.addEventListener("click", function () {
      // the button goes with the status text it is in (``busy``): focus stays in the calendar, on its month
      if (document.activeElement === retry) $("month-label").focus();
      if (again) again();
      else self.load(true);
    });
    $("month").setAttribute("aria-busy", "false");
    $("calendar-status").className = "status";
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
    var next = $("next-month");
    var focused = document.activeElement;
    prev.disabled = thisMonth.slice(0, 7) <= today.slice(0, 7);
    next.disabled = this.atLastMonth(); // no later month can have a start (the horizon)
    // back in the first month, or on to the last: focus stays in the calendar
    if (focused === prev && prev.disabled) (next.disabled ? $("picker-heading") : next).focus();
    if (focused === next && next.disabled) (prev.disabled ? $("picker-heading") : prev).focus();
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

  // Selects the day ``iso`` and shows its times; focus moves to the first of them (a day chosen by the
  // prospect) unless ``keepFocus`` (the page chose it: focus stays where the page put it, or the host's).
  Picker.prototype.pickDay = function (iso, keepFocus) {
    this.selectedDay = iso;
    Array.prototype.forEach.call(document.querySelectorAll("#calendar-body .day"), function (b) {
      b.setAttribute("aria-pressed", b.dataset.date === iso ? "true" : "false");
    });
    this.drawTimes();
    if (keepFocus) return;
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

  // Loads the first month with free times (this one or the next two, not past the horizon), drawing each step.
  Picker.prototype.loadFirstFree = function () {
    var self = this;
    var tries = 0;
    function step() {
      return self.load().then(function (result) {
        var empty = result && result.ok && !Object.keys(self.byDay).length;
        if (empty && tries < 2 && !self.atLastMonth() && !config.no_times) {
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
  Picker.NO_TIMES = NO_TIMES;
  B.Picker = Picker;
})();
