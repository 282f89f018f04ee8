// Text kept across a login (web/pages/common.py, auth.py): a form posted after the session had ended is answered by the login
// page, which carries the typed fields; once logged in, this script keeps them in the tab's sessionStorage, opens the
// page the form lives on and puts them back into that form. Nothing is ever submitted for the person.
(function () {
  "use strict";
  var KEY = "blametrail.restore";

  function keep() {
    var data = document.getElementById("restore-data");
    if (!data) { return false; }
    var next = data.getAttribute("data-next") || "/incidents";
    try {
      sessionStorage.setItem(KEY, JSON.stringify({
        next: next, action: data.getAttribute("data-action"), fields: JSON.parse(data.getAttribute("data-fields") || "{}")
      }));
    } catch (e) {
      return false;  // no storage (private mode, blocked): the page shows the link and the <noscript> copy stays out
    }
    window.location.replace(next);
    return true;
  }

  function fill() {
    var raw = null;
    try { raw = sessionStorage.getItem(KEY); } catch (e) { return; }
    if (!raw) { return; }
    var kept;
    try { kept = JSON.parse(raw); } catch (e) { sessionStorage.removeItem(KEY); return; }
    if (!kept || (kept.next !== window.location.pathname + window.location.search &&
                  kept.next !== window.location.pathname)) { return; }
    sessionStorage.removeItem(KEY);
    var forms = document.querySelectorAll("form"), target = null;
    for (var i = 0; i < forms.length; i++) {
      if (forms[i].getAttribute("action") === kept.action) { target = forms[i]; break; }
    }
    if (!target || !kept.fields) { return; }
    var restored = null;
    Object.keys(kept.fields).forEach(function (name) {
      var el = target.elements.namedItem(name);
      if (!el || !el.tagName) { return; }  // missing, or several controls of that name
      var type = (el.getAttribute("type") || "").toLowerCase();
      if (["hidden", "password", "file", "checkbox", "radio", "submit", "button"].indexOf(type) >= 0) { return; }
      el.value = String(kept.fields[name]);
      restored = restored || el;
    });
    if (!restored) { return; }
    var note = document.createElement("p");
    note.className = "notice notice-info restored-notice";
    note.setAttribute("role", "status");
    note.textContent = "What you typed before logging in again is back in this form: check it, then send it.";
    target.insertBefore(note, target.firstChild);
    restored.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!keep()) { fill(); }
  });
})();
