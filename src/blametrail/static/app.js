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

  // A confirmation dialog before an action that changes things for everyone (publish, resolve, remove a member,
  // AI off). A native modal <dialog>: focus moves into it and stays there, Escape cancels, and focus returns to
  // the button afterwards. Without this script the server asks on a page of its own (web/pages/confirm.py).
  var asking = null;  // {form, submitter} while the dialog is open

  function confirmDialog() {
    var dialog = document.getElementById("confirm-dialog");
    if (dialog) { return dialog; }
    dialog = document.createElement("dialog");
    dialog.id = "confirm-dialog";
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-title");
    dialog.setAttribute("aria-describedby", "confirm-dialog-text");
    var inner = document.createElement("form");
    inner.method = "dialog";
    var title = document.createElement("h2");
    title.id = "confirm-dialog-title";
    title.textContent = "Please confirm";
    var text = document.createElement("p");
    text.id = "confirm-dialog-text";
    var actions = document.createElement("div");
    actions.className = "confirm-actions";
    var ok = document.createElement("button");
    ok.value = "ok";
    ok.className = "button button-primary confirm-ok";
    var cancel = document.createElement("button");
    cancel.value = "cancel";
    cancel.className = "button button-quiet confirm-cancel";
    cancel.textContent = "Cancel";
    actions.appendChild(ok);
    actions.appendChild(cancel);
    inner.appendChild(title);
    inner.appendChild(text);
    inner.appendChild(actions);
    dialog.appendChild(inner);
    dialog.addEventListener("close", function () {
      var pending = asking;
      asking = null;
      if (!pending || dialog.returnValue !== "ok") { return; }
      var box = pending.form.querySelector("input[name=confirm]");
      if (box) { box.value = "yes"; }
      pending.form.setAttribute("data-confirmed", "");
      // requestSubmit: htmx (hx-post) and the browser both see an ordinary submit, now confirmed
      if (pending.submitter && pending.submitter.form === pending.form) {
        pending.form.requestSubmit(pending.submitter);
      } else {
        pending.form.requestSubmit();
      }
    });
    document.body.appendChild(dialog);
    return dialog;
  }

  function askFirst(form, submitter) {
    var dialog = confirmDialog();
    dialog.querySelector("#confirm-dialog-text").textContent = form.getAttribute("data-confirm-dialog");
    dialog.querySelector(".confirm-ok").textContent = form.getAttribute("data-confirm-button") || "Confirm";
    dialog.returnValue = "";
    asking = {form: form, submitter: submitter};
    dialog.showModal();
    dialog.querySelector(".confirm-cancel").focus();  // why: Enter on arrival must not do the irreversible thing
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm-dialog")) { return; }
    if (form.hasAttribute("data-confirmed")) {
      form.removeAttribute("data-confirmed");
      return;
    }
    // why: stopped in the capture phase, the event never reaches htmx's listener on the form
    event.preventDefault();
    event.stopPropagation();
    askFirst(form, event.submitter);
  }, true);

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

  // Fields with a limit say so while typing; the server refuses (never cuts) a longer text. No maxlength on
  // these fields: a browser's maxlength cuts a longer paste without a word.
  function checkLength(field) {
    var limit = parseInt(field.getAttribute("data-maxlength"), 10);
    if (isNaN(limit)) { return; }
    var id = field.id + "-length";
    var note = document.getElementById(id);
    var over = field.value.length > limit;
    if (!over) {
      if (note) { note.hidden = true; }
      field.removeAttribute("aria-invalid");
      return;
    }
    if (!note) {
      note = document.createElement("p");
      note.id = id;
      note.className = "form-error length-note";
      note.setAttribute("role", "status");
      field.insertAdjacentElement("afterend", note);
      var described = field.getAttribute("aria-describedby");
      field.setAttribute("aria-describedby", described ? described + " " + id : id);
    }
    note.hidden = false;
    field.setAttribute("aria-invalid", "true");
    note.textContent = "This is " + field.value.length.toLocaleString("en-US") + " characters; the limit is " +
      limit.toLocaleString("en-US") + ". Shorten it before sending: nothing is cut for you.";
  }

  document.addEventListener("input", function (event) {
    if (event.target && event.target.hasAttribute && event.target.hasAttribute("data-maxlength")) {
      checkLength(event.target);
    }
  });
  var limited = document.querySelectorAll("[data-maxlength]");
  for (var l = 0; l < limited.length; l++) { checkLength(limited[l]); }

  // A link to a long update (a citation) opens its collapsed text.
  function openTarget() {
    var id = window.location.hash.slice(1);
    var target = id && document.getElementById(decodeURIComponent(id));
    var details = target && target.querySelector("details.show-all");
    if (details) { details.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();

  document.addEventListener("htmx:sendError", function () {
    showNotice("The server could not be reached; the page will keep trying while a draft is generating.");
  });
})();
