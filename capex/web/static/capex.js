// capex web client: progressive enhancement only. Every page works without this file.
(function () {
  "use strict";
  // A time zone field left empty takes the browser's own zone, which the person can change.
  document.querySelectorAll("input[data-default-timezone]").forEach(function (field) {
    if (!field.value && window.Intl && Intl.DateTimeFormat) {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) { field.value = zone; }
    }
  });
  // After a form with errors re-renders, put the focus on its summary for screen readers.
  var summary = document.getElementById("form-errors");
  if (summary) { summary.focus(); }
})();
