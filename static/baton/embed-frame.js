/*
 * Loaded by the booking page in embed mode (/book/<slug>?embed=1). Talks to the host page's embed.js:
 *   {type: "baton:resize", height}   whenever the page's content height changes (ResizeObserver);
 *   {type: "baton:booked", booking}  when the page dispatches window CustomEvent "baton:booked"
 *                                    with detail {id, start, hosts};
 *   {type: "baton:escape"}           when Esc is pressed inside the frame (closes a pop-up).
 * Messages go only to the origin the host passed as ?parent_origin= (else the referrer's origin); a page
 * that lies about its origin receives nothing, because postMessage checks the target origin.
 */
(function () {
  "use strict";
  if (window.parent === window) return;

  function parentOrigin() {
    var given = new URLSearchParams(window.location.search).get("parent_origin") || "";
    if (/^https?:\/\/[^\/?#@\s]+$/.test(given)) return given;
    try {
      return document.referrer ? new URL(document.referrer).origin : null;
    } catch (e) {
      return null;
    }
  }

  var target = parentOrigin();
  if (!target || target === "null") return;

  function post(message) {
    window.parent.postMessage(message, target);
  }

  var root = document.documentElement;
  // The frame is sized to the content: styles that stretch the page to the viewport would never let it shrink.
  root.classList.add("baton-embedded");
  root.style.setProperty("height", "auto", "important");
  root.style.setProperty("min-height", "0", "important");

  var last = -1;
  var scheduled = false;

  function measure() {
    scheduled = false;
    var body = document.body;
    var height = root.offsetHeight;
    if (body) {
      var style = window.getComputedStyle(body);
      var rect = body.getBoundingClientRect();
      height = Math.max(height, rect.height + parseFloat(style.marginTop) + parseFloat(style.marginBottom));
    }
    height = Math.ceil(height);
    if (height !== last) {
      last = height;
      post({ type: "baton:resize", height: height });
    }
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    window.requestAnimationFrame(measure);
  }

  function start() {
    if (document.body) {
      document.body.style.setProperty("min-height", "0", "important");
      document.body.style.setProperty("height", "auto", "important");
    }
    if (window.ResizeObserver) {
      var observer = new ResizeObserver(schedule);
      observer.observe(root);
      if (document.body) observer.observe(document.body);
    }
    window.addEventListener("resize", schedule);
    window.addEventListener("load", schedule);
    schedule();
  }

  window.addEventListener("baton:booked", function (event) {
    var d = event.detail || {};
    var hosts = Array.isArray(d.hosts) ? d.hosts : [];
    post({
      type: "baton:booked",
      booking: {
        id: d.id,
        start: d.start,
        hosts: hosts.map(function (h) {
          return h && typeof h === "object" ? { name: h.name, email: h.email, role: h.role || "" } : h;
        }),
      },
    });
  });

  // last in the bubbling order, so the page's own Esc handling (closing a list) can preventDefault() first
  window.addEventListener("keydown", function (event) {
    if ((event.key === "Escape" || event.key === "Esc") && !event.defaultPrevented) post({ type: "baton:escape" });
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
