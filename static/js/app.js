// Small behaviours of toqdash pages. No inline scripts anywhere (Content-Security-Policy).
(function () {
  "use strict";

  // The language <select> submits its form; the button stays for browsers without JS.
  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        select.form.requestSubmit();
      });
    });
    // Filters change the URL through hx-push-url after the page was rendered: come back to the
    // URL the person is looking at, not the one the page was first loaded with.
    document.querySelectorAll("form.lang-switch").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.elements.next.value = window.location.pathname + window.location.search;
      });
    });
  });

  // An evidence link (#log-… / #ev-…) whose row is on another page of its panel (logs and history
  // are paged): load the panel on the page holding the row, then jump to it. Rows already on screen
  // are reached by the plain anchor.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.evidence-link[data-panel-url]");
    if (!link || !window.htmx) {
      return;
    }
    var anchor = link.getAttribute("href").split("#")[1];
    if (!anchor || document.getElementById(anchor) || !document.querySelector(link.dataset.panel)) {
      return;
    }
    event.preventDefault();
    window.htmx
      .ajax("GET", link.dataset.panelUrl, { target: link.dataset.panel, swap: "outerHTML" })
      .then(function () {
        window.location.hash = anchor;
      });
  });

  // Live refresh pauses in a hidden tab: htmx's trigger filters would need eval (forbidden by
  // the CSP), so the poll request is cancelled here instead; the next tick after the tab is
  // shown again refreshes.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (document.hidden && elt && elt.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });
})();
