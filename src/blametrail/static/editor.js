// The postmortem editor's table rows without a round trip: add, remove and move rows of the timeline and the
// action items. Without JavaScript the same buttons submit the form, and the server re-renders it (keeping typed text).
(function () {
  "use strict";

  function renumber(tbody) {
    var rows = tbody.querySelectorAll("tr");
    rows.forEach(function (tr, n) {
      tr.querySelectorAll("[data-row-op]").forEach(function (button) {
        var parts = button.value.split(":");
        button.value = parts[0] + ":" + parts[1] + ":" + n;
        var op = button.getAttribute("data-row-op");
        button.disabled = (op === "up" && n === 0) || (op === "down" && n === rows.length - 1);
      });
    });
  }

  function blankRow(tbody) {
    var template = tbody.querySelector("tr:last-child");
    var row = template.cloneNode(true);
    var stamp = "new" + Date.now() + Math.floor(Math.random() * 1000);
    row.querySelectorAll("input, select, textarea").forEach(function (el) {
      if (el.tagName === "SELECT") {
        var fallback = el.name === "action_priority" ? "medium" : "update";
        Array.prototype.forEach.call(el.options, function (o) { o.selected = o.value === fallback; });
      } else {
        el.value = "";
      }
      if (el.id) {
        var label = row.querySelector("label[for='" + el.id + "']");
        el.id = el.id.replace(/-[^-]+$/, "-" + stamp);
        if (label) { label.htmlFor = el.id; }
      }
    });
    return row;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("form.editor button[name=op]");
    if (!button) { return; }
    var value = button.value;
    var parts = value.split(":");
    var table = document.querySelector("table[data-table='" + parts[0] + "']");
    if (!table || parts[1] === undefined || value.indexOf("preview:") === 0) { return; }
    var tbody = table.tBodies[0];
    var rows = tbody.querySelectorAll("tr");
    var n = parseInt(parts[2], 10);
    if (parts[1] === "add") {
      if (!rows.length) { return; } // nothing to copy: let the server add the row
      tbody.appendChild(blankRow(tbody));
      var first = tbody.querySelector("tr:last-child input:not([type=hidden]), tr:last-child textarea");
      if (first) { first.focus(); }
    } else if (parts[1] === "remove" && rows[n]) {
      if (rows.length === 1) { tbody.appendChild(blankRow(tbody)); }
      rows[n].remove();
    } else if (parts[1] === "up" && rows[n] && n > 0) {
      tbody.insertBefore(rows[n], rows[n - 1]);
      rows[n].querySelector("[data-row-op=up]").focus();
    } else if (parts[1] === "down" && rows[n] && n < rows.length - 1) {
      tbody.insertBefore(rows[n + 1], rows[n]);
      rows[n].querySelector("[data-row-op=down]").focus();
    } else {
      return;
    }
    event.preventDefault();
    renumber(tbody);
  });
})();
