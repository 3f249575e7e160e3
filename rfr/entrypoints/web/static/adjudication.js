// Keys for the adjudication view; every form works without this script.
// j / k: the next / previous candidate; v / n: choose viable / not viable for the current
// candidate and move to its reasons. Not while typing in a field.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.querySelector("[data-adjudication]");
    if (!list) {
      return;
    }
    var candidates = Array.prototype.slice.call(list.querySelectorAll("[data-candidate]"));
    var current = 0;
    function show(index) {
      if (index < 0 || index >= candidates.length) {
        return;
      }
      current = index;
      candidates[current].focus();
      candidates[current].scrollIntoView({ block: "start" });
    }
    list.addEventListener("focusin", function (event) {
      var at = candidates.indexOf(event.target.closest("[data-candidate]"));
      if (at >= 0) {
        current = at;
      }
    });
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text"))) {
        return;
      }
      if (event.key === "j") {
        show(current + 1);
      } else if (event.key === "k") {
        show(current - 1);
      } else if (event.key === "v" || event.key === "n") {
        var choice = candidates[current] && candidates[current].querySelector('[data-key="' + event.key + '"]');
        if (!choice) {
          return;
        }
        choice.checked = true;
        var reasons = candidates[current].querySelector("textarea");
        (reasons || choice).focus();
      } else {
        return;
      }
      event.preventDefault();
    });
  });
})();
