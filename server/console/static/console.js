// fedprofile compliance console: the only script. Plain JavaScript, no build step.
// While an audit verification runs, reload the page every few seconds to show its result.
(function () {
  "use strict";
  var status = document.querySelector("[data-refresh]");
  if (status) {
    var seconds = parseInt(status.getAttribute("data-refresh"), 10) || 2;
    window.setTimeout(function () { window.location.replace(window.location.pathname); }, seconds * 1000);
  }
})();
