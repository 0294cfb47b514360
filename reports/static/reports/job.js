// R11.3: a long report's progress page: asks the job's state every second and shows the
// result (the same page, reloaded) once the worker is done.
(function () {
  "use strict";
  var status = document.getElementById("job-status");
  if (!status) { return; }
  function poll() {
    fetch(status.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        document.getElementById("job-state").textContent = s.label;
        if (s.done) { window.location.href = s.next; return; }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 1000);
})();
