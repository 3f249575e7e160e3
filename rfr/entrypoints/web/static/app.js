// Progressive enhancement only: every page works without this script.
// When a form comes back with errors, focus moves to their summary, so a keyboard or
// screen-reader user hears what went wrong and can follow each link to its field.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) {
      summary.focus();
    }
  });
})();
