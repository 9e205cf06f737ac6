/*
 * Baton booking widget for host sites (no dependencies). Usage:
 *   <div data-baton-meeting="demo"></div>                          inline booking page
 *   <button data-baton-popup="demo">Book a meeting</button>         pop-up booking page
 *   <script src="https://baton.example/static/baton/embed.js" async></script>
 * Optional prefill attributes on either element: data-baton-name, data-baton-email, data-baton-date,
 * data-baton-timezone, data-baton-utm-source (any data-baton-utm-*). The host page's own utm_* query
 * parameters are passed through. When a booking is made, a bubbling "baton:booked" CustomEvent with
 * detail {id, start, hosts} is dispatched on the element. window.Baton.scan() picks up elements added later
 * (copies of set-up elements too); window.Baton.open(slug, options) opens the pop-up from code. Where the
 * host page has a window.Baton of its own, the same API is window.BatonEmbed (always published).
 */
(function () {
  "use strict";
  // an earlier copy of this script (loaded twice) is told by its own marker: a host page may have a
  // window.Baton of its own, which is left alone (the widget then does not publish its API over it)
  var earlier = window.BatonEmbed || window.Baton;
  if (earlier && earlier.__batonEmbed === true) {
    earlier.scan();
    return;
  }
  var foreign = window.Baton !== undefined;

  var SCRIPT_PATH = "/static/baton/embed.js";
  var PREFILL = ["name", "email", "date", "timezone", "start"];
  var MIN_HEIGHT = 120;
  var MAX_HEIGHT = 20000;

  function findScript() {
    var current = document.currentScript;
    if (current && current.src) return current;
    var scripts = document.getElementsByTagName("script");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (scripts[i].src && scripts[i].src.split("?")[0].slice(-SCRIPT_PATH.length) === SCRIPT_PATH) {
        return scripts[i];
      }
    }
    return null;
  }

  var script = findScript();
  var scriptUrl = new URL(script ? script.src : SCRIPT_PATH, window.location.href);
  var ORIGIN = scriptUrl.origin;
  var path = scriptUrl.pathname;
  // Baton may be served under a sub-path: everything before /static/baton/embed.js.
  var BASE = ORIGIN + (path.slice(-SCRIPT_PATH.length) === SCRIPT_PATH ? path.slice(0, -SCRIPT_PATH.length) : "");
  var frames = []; // {iframe, host}
  // Elements set up by this script. The data-baton-ready attribute is only a signal to the host page: a
  // copy of an element (cloneNode, a theme's mobile menu, a page snapshot) carries it without the click
  // listener or the registered frame, and Baton.scan() must set the copy up as well.
  var ready = typeof WeakSet === "function" ? new WeakSet() : null;

  function claim(el) {
    if (ready ? ready.has(el) : el.getAttribute("data-baton-ready")) return false;
    if (ready) ready.add(el);
    el.setAttribute("data-baton-ready", "1");
    return true;
  }

  function bookingUrl(slug, el, extra) {
    var url = new URL(BASE + "/book/" + encodeURIComponent(slug));
    var params = url.searchParams;
    params.set("embed", "1");
    params.set("parent_origin", window.location.origin);
    new URLSearchParams(window.location.search).forEach(function (value, key) {
      if (/^utm_[a-z0-9_]{1,40}$/.test(key)) params.set(key, value);
    });
    var attrs = el ? el.attributes : [];
    for (var i = 0; i < attrs.length; i++) {
      var m = /^data-baton-(.+)$/.exec(attrs[i].name);
      if (!m) continue;
      var key = m[1].replace(/-/g, "_");
      if (PREFILL.indexOf(key) >= 0 || /^utm_[a-z0-9_]{1,40}$/.test(key)) params.set(key, attrs[i].value);
    }
    Object.keys(extra || {}).forEach(function (key) {
      params.set(key, extra[key]);
    });
    return url.toString();
  }

  function makeFrame(slug, el, extra) {
    var iframe = document.createElement("iframe");
    iframe.src = bookingUrl(slug, el, extra);
    iframe.title = "Book a meeting";
    iframe.setAttribute("data-baton-frame", slug);
    Object.assign(iframe.style, {
      display: "block",
      width: "100%",
      minWidth: "280px",
      height: "600px",
      border: "0",
      overflow: "hidden",
      colorScheme: "normal",
    });
    return iframe;
  }

  function register(iframe, host) {
    frames.push({ iframe: iframe, host: host });
  }

  function unregister(iframe) {
    frames = frames.filter(function (f) {
      return f.iframe !== iframe;
    });
  }

  function onMessage(event) {
    if (event.origin !== ORIGIN || !event.data || typeof event.data !== "object") return;
    var entry = null;
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].iframe.contentWindow === event.source) entry = frames[i];
    }
    if (!entry) return;
    var data = event.data;
    if (data.type === "baton:resize" && typeof data.height === "number" && isFinite(data.height)) {
      var height = Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, Math.ceil(data.height)));
      entry.iframe.style.height = height + "px";
    } else if (data.type === "baton:booked" && data.booking && typeof data.booking === "object") {
      var b = data.booking;
      var detail = { id: b.id, start: b.start, hosts: Array.isArray(b.hosts) ? b.hosts : [] };
      entry.host.dispatchEvent(new CustomEvent("baton:booked", { bubbles: true, composed: true, detail: detail }));
    }
  }

  function mountInline(el) {
    var slug = el.getAttribute("data-baton-meeting");
    if (!slug || !claim(el)) return;
    // a copied widget holds a copy of the frame, registered nowhere: it is replaced
    Array.prototype.forEach.call(el.querySelectorAll("iframe[data-baton-frame]"), function (copy) {
      if (copy.parentNode === el) el.removeChild(copy);
    });
    var iframe = makeFrame(slug, el);
    el.appendChild(iframe);
    register(iframe, el);
  }

  /* ---- pop-up ---- */
  var open = null; // {overlay, iframe, trigger, onKey, onFocus, overflow}

  function closePopup() {
    if (!open) return;
    var current = open;
    open = null;
    document.removeEventListener("keydown", current.onKey, true);
    document.removeEventListener("focusin", current.onFocus, true);
    unregister(current.iframe);
    current.overlay.parentNode.removeChild(current.overlay);
    document.documentElement.style.overflow = current.overflow;
    if (current.trigger && typeof current.trigger.focus === "function") current.trigger.focus();
  }

  function openPopup(slug, trigger, extra) {
    closePopup();
    var overlay = document.createElement("div");
    overlay.setAttribute("data-baton-overlay", slug);
    Object.assign(overlay.style, {
      position: "fixed",
      inset: "0",
      zIndex: "2147483646",
      background: "rgba(15, 23, 42, 0.6)",
      display: "flex",
      alignItems: "flex-start",
      justifyContent: "center",
      overflowY: "auto",
      padding: "24px 8px",
      boxSizing: "border-box",
    });
    var dialog = document.createElement("div");
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-label", "Book a meeting");
    Object.assign(dialog.style, {
      position: "relative",
      width: "100%",
      maxWidth: "760px",
      background: "Canvas",
      color: "CanvasText",
      borderRadius: "10px",
      boxShadow: "0 10px 40px rgba(0,0,0,.35)",
      padding: "40px 0 0 0",
      margin: "auto 0",
    });
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Close");
    close.setAttribute("data-baton-close", "");
    close.textContent = "\u00d7";
    Object.assign(close.style, {
      position: "absolute",
      top: "4px",
      right: "8px",
      width: "36px",
      height: "36px",
      font: "28px/1 system-ui, sans-serif",
      background: "transparent",
      color: "inherit",
      border: "0",
      cursor: "pointer",
    });
    var iframe = makeFrame(slug, trigger, extra);
    dialog.appendChild(close);
    dialog.appendChild(iframe);
    overlay.appendChild(dialog);

    close.addEventListener("click", closePopup);
    overlay.addEventListener("click", function (e) {
      if (e.target === overlay) closePopup();
    });
    var onKey = function (e) {
      if (e.key === "Escape" || e.key === "Esc") {
        e.preventDefault();
        closePopup();
      } else if (e.key === "Tab" && e.shiftKey && document.activeElement === close) {
        e.preventDefault();
        iframe.focus();
      }
    };
    // keep focus inside the dialog (the close button and the booking frame)
    var onFocus = function (e) {
      if (open && !dialog.contains(e.target)) close.focus();
    };
    document.addEventListener("keydown", onKey, true);
    document.addEventListener("focusin", onFocus, true);
    open = {
      overlay: overlay,
      iframe: iframe,
      trigger: trigger,
      onKey: onKey,
      onFocus: onFocus,
      overflow: document.documentElement.style.overflow,
    };
    document.documentElement.style.overflow = "hidden";
    document.body.appendChild(overlay);
    register(iframe, trigger || document.body);
    close.focus();
  }

  // Esc pressed while focus is inside the booking frame arrives as a message from it
  function onFrameKey(event) {
    if (open && event.origin === ORIGIN && event.source === open.iframe.contentWindow &&
        event.data && event.data.type === "baton:escape") {
      closePopup();
    }
  }

  function bindPopup(el) {
    var slug = el.getAttribute("data-baton-popup");
    if (!slug || !claim(el)) return;
    el.setAttribute("aria-haspopup", "dialog");
    el.addEventListener("click", function (e) {
      e.preventDefault();
      openPopup(slug, el);
    });
  }

  function scan(root) {
    var scope = root || document;
    Array.prototype.forEach.call(scope.querySelectorAll("[data-baton-meeting]"), mountInline);
    Array.prototype.forEach.call(scope.querySelectorAll("[data-baton-popup]"), bindPopup);
  }

  window.addEventListener("message", onMessage);
  window.addEventListener("message", onFrameKey);
  var api = {
    __batonEmbed: true,
    version: 1,
    origin: ORIGIN,
    scan: scan,
    open: function (slug, options) {
      options = options || {};
      openPopup(slug, options.element || null, options.params || {});
    },
    close: closePopup,
  };
  window.BatonEmbed = api; // always; window.Baton too unless the host page has one of its own
  if (!foreign) window.Baton = api;

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      scan();
    });
  } else {
    scan();
  }
})();
