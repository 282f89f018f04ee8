// BlameTrail page behaviour (no inline scripts: the CSP forbids them). Pages work without this file.
(function () {
  "use strict";

  function showNotice(text) {
    var box = document.getElementById("js-notice");
    if (!box) { return; }
    box.textContent = text;  // textContent: never interpret server or user text as HTML
    box.hidden = false;
  }

  // htmx does not swap error answers it was not told to swap: say so instead of failing silently.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    var status = xhr ? xhr.status : 0;
    if (status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      return;
    }
    var detail = "";
    try {
      var body = JSON.parse(xhr.responseText);
      detail = body && body.detail ? " " + body.detail : "";
    } catch (e) { detail = ""; }
    showNotice("The action did not succeed (HTTP " + status + ")." + detail);
  });

  // Rate-limit notices count down to the moment Regenerate is allowed again.
  function tick() {
    var spans = document.querySelectorAll("[data-countdown]");
    for (var i = 0; i < spans.length; i++) {
      var left = parseInt(spans[i].getAttribute("data-countdown"), 10) - 1;
      if (isNaN(left)) { continue; }
      spans[i].setAttribute("data-countdown", String(Math.max(left, 0)));
      // the wording comes from the page (data-countdown-prefix / -done), so each countdown reads as one sentence
      var prefix = spans[i].getAttribute("data-countdown-prefix") || "Available again in ";
      var done = spans[i].getAttribute("data-countdown-done") || "Available again now.";
      spans[i].textContent = left > 0 ? prefix + left + " s." : done;
      if (left <= 0) { spans[i].removeAttribute("data-countdown"); }
    }
  }
  window.setInterval(tick, 1000);

  // Confirmations before a change that sends data elsewhere or drops it. The server asks again when the answer
  // is missing (no JavaScript), so this only saves a round trip; a confirmed form carries confirm=yes.
  function confirmed(form, message) {
    if (!window.confirm(message)) { return false; }
    var box = form.querySelector("input[name=confirm]");
    if (box && box.type === "hidden") { box.value = "yes"; }
    return true;
  }

  function changeMessages(form) {
    var out = [];
    var fields = form.querySelectorAll("[data-confirm-change]");
    for (var i = 0; i < fields.length; i++) {
      var el = fields[i];
      var changed = el.type === "checkbox" ? el.checked
        : el.hasAttribute("data-saved") && el.value.trim() !== el.getAttribute("data-saved");
      if (changed) { out.push(el.getAttribute("data-confirm-change")); }
    }
    return out;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) { return; }
    var message = form.getAttribute("data-confirm");
    if (form.hasAttribute("data-confirm-changes")) {
      var changes = changeMessages(form);
      message = changes.length ? changes.join("\n") + "\n\nSave anyway?" : null;
    }
    if (message && !confirmed(form, message)) { event.preventDefault(); }
  }, true);

  // "Add a row" buttons copy the table's last row, emptied; a row's Remove box keeps its position as its value.
  function addRow(button) {
    var body = document.querySelector(button.getAttribute("data-add-row"));
    var last = body && body.lastElementChild;
    if (!last) { return; }
    var row = last.cloneNode(true);
    var index = body.children.length;
    var inputs = row.querySelectorAll("input");
    for (var i = 0; i < inputs.length; i++) {
      var input = inputs[i];
      var id = input.id.replace(/-\d+$/, "-" + index);
      var label = row.querySelector("label[for='" + input.id + "']");
      if (label) {
        label.setAttribute("for", id);
        label.childNodes.forEach(function (n) {
          if (n.nodeType === 3) { n.textContent = n.textContent.replace(/row \d+/, "row " + (index + 1)); }
        });
      }
      input.id = id;
      if (input.type === "checkbox") { input.checked = false; input.value = String(index); } else { input.value = ""; }
    }
    body.appendChild(row);
    var first = row.querySelector("input");
    if (first) { first.focus(); }
  }

  var adders = document.querySelectorAll("[data-add-row]");
  for (var a = 0; a < adders.length; a++) {
    adders[a].hidden = false;  // only useful with this script: without it the page already has blank rows
    adders[a].addEventListener("click", function (event) { addRow(event.currentTarget); });
  }

  document.addEventListener("htmx:sendError", function () {
    showNotice("The server could not be reached; the page will keep trying while a draft is generating.");
  });
})();
