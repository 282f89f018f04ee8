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
      spans[i].textContent = left > 0 ? "Available again in " + left + " s." : "Available again now.";
      if (left <= 0) { spans[i].removeAttribute("data-countdown"); }
    }
  }
  window.setInterval(tick, 1000);

  document.addEventListener("htmx:sendError", function () {
    showNotice("The server could not be reached; the page will keep trying while a draft is generating.");
  });
})();
