/* "Copy" buttons of the meeting type admin's embed-code box: <button data-baton-copy="<textarea id>">. */
(function () {
  "use strict";

  function fallbackCopy(field) {
    field.focus();
    field.select();
    return document.execCommand("copy");
  }

  function copy(button) {
    var field = document.getElementById(button.getAttribute("data-baton-copy"));
    var status = document.querySelector('[data-baton-copy-status="' + field.id + '"]');
    var done = function (ok) {
      if (status) status.textContent = ok ? "Copied." : "Press Ctrl+C to copy.";
      if (!ok) {
        field.focus();
        field.select();
      }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () {
          done(true);
        },
        function () {
          done(fallbackCopy(field));
        }
      );
    } else {
      done(fallbackCopy(field));
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-baton-copy]");
    if (button) {
      event.preventDefault();
      copy(button);
    }
  });
})();
