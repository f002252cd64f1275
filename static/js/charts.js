// Draws every chart container on the page: `<div class="chart" data-figure="ID">` next to the
// figure's JSON in `<script type="application/json" id="ID">` (Django's json_script). Runs on load
// and on every htmx swap (panels arrive lazily). The one place that calls Plotly; no inline code
// anywhere (Content-Security-Policy).
(function () {
  "use strict";

  function draw(root) {
    if (typeof window.Plotly === "undefined") {
      return;
    }
    root.querySelectorAll(".chart[data-figure]").forEach(function (container) {
      if (container.dataset.drawn) {
        return;
      }
      var source = document.getElementById(container.dataset.figure);
      if (!source) {
        return;
      }
      var figure = JSON.parse(source.textContent);
      container.dataset.drawn = "1";
      window.Plotly.newPlot(container, figure.data || [], figure.layout || {}, {
        responsive: true,
        displaylogo: false,
        // The mode bar adds per-plot inline <style> rules (blocked by the CSP); hover still works.
        displayModeBar: false,
      });
    });
  }

  // A link to an evidence row (#log-… / #ev-…) opened before its panel arrived: scroll to it
  // once it exists, so :target styling and the position match a click after load.
  function revealHash() {
    var id = window.location.hash.slice(1);
    if (!id) {
      return;
    }
    var target = document.getElementById(decodeURIComponent(id));
    if (target && !target.dataset.revealed) {
      target.dataset.revealed = "1";
      target.scrollIntoView({ block: "center" });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    draw(document);
    revealHash();
  });
})();
