// Segment builder and import progress. The pages work without it; it makes them nicer.
(function () {
  "use strict";

  // Every operator option, once: the operator list of a row shows only its field's.
  var allOps = null;

  function syncRule(row) {
    var field = row.querySelector("[data-field]").value;
    var op = row.querySelector("[data-op]");
    if (allOps === null) {
      allOps = Array.prototype.map.call(op.options, function (o) { return o.cloneNode(true); });
    }
    var chosen = op.value;
    var fits = allOps.filter(function (o) { return o.getAttribute("data-for") === field; });
    if (!fits.some(function (o) { return o.value === chosen; })) {
      chosen = fits.length ? fits[0].value : "";
    }
    op.innerHTML = "";
    fits.forEach(function (o) {
      var copy = o.cloneNode(true);
      copy.selected = copy.value === chosen;
      op.appendChild(copy);
    });
    op.hidden = field === "";
    var valueless = ["is_empty", "is_not_empty", "exists", "missing"].indexOf(op.value) >= 0;
    row.querySelector("[data-key]").hidden = field !== "attribute";
    row.querySelector("[data-list]").hidden = field !== "list";
    var value = row.querySelector("[data-value]");
    value.hidden = field === "list" || valueless || field === "";
    value.type = field === "created_at" ? "date" : (field === "engagement" ? "number" : "text");
    value.placeholder = field === "engagement" ? "days" : "value";
  }

  function wire(row) {
    row.querySelector("[data-field]").addEventListener("change", function () { syncRule(row); });
    row.querySelector("[data-op]").addEventListener("change", function () { syncRule(row); });
    row.querySelector("[data-remove]").addEventListener("click", function () {
      if (document.querySelectorAll("#rules [data-rule]").length > 1) { row.remove(); }
    });
    syncRule(row);
  }

  var rules = document.getElementById("rules");
  if (rules) {
    Array.prototype.forEach.call(rules.querySelectorAll("[data-rule]"), wire);
    document.getElementById("add-rule").addEventListener("click", function () {
      var template = document.getElementById("rule-template");
      var row = template.content.firstElementChild.cloneNode(true);
      rules.appendChild(row);
      wire(row);
      row.querySelector("[data-field]").focus();
    });
  }

  var progress = document.querySelector("[data-import-status]");
  if (progress) {
    var url = progress.getAttribute("data-import-status");
    var bar = progress.querySelector(".progress-bar");
    var meter = progress.querySelector(".progress");
    var label = progress.querySelector("[data-import-label]");
    var poll = function () {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          bar.style.width = s.percent + "%";
          meter.setAttribute("aria-valuenow", s.percent);
          label.textContent = s.percent + "% · " + s.rows.toLocaleString() + " rows read · " +
            s.created.toLocaleString() + " new · " + s.errors.toLocaleString() + " in the error report";
          if (s.status === "done" || s.status === "failed") { window.location.reload(); }
          else { window.setTimeout(poll, 700); }
        })
        .catch(function () { window.setTimeout(poll, 2000); });
    };
    window.setTimeout(poll, 300);
  }

  // The mapping step: a new separator or encoding reads the file again at once.
  Array.prototype.forEach.call(document.querySelectorAll("[data-reread]"), function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // The upload: a file over the limit is refused before it is sent (the server refuses it too).
  // The form is novalidate (the server's messages show inline), so the submit is stopped here.
  var file = document.querySelector("input[type=file][data-max-bytes]");
  if (file) {
    var tooBig = function () {
      var big = file.files.length > 0 && file.files[0].size > Number(file.getAttribute("data-max-bytes"));
      file.setCustomValidity(big ? file.getAttribute("data-too-big") : "");
      return big;
    };
    file.addEventListener("change", function () { if (tooBig()) { file.reportValidity(); } });
    file.form.addEventListener("submit", function (event) {
      if (tooBig()) { event.preventDefault(); file.reportValidity(); }
    });
  }
})();
