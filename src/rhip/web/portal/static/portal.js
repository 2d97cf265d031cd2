// rhip portal: the CSRF header on htmx requests, and plotly charts declared in data-figure attributes
// (the page policy allows no inline scripts). Charts have no mode bar: its buttons inside an element of
// role img are nested controls to a screen reader, and one of them links off-site.
(function () {
  "use strict";
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function draw(root) {
    if (typeof Plotly === "undefined") { return; }
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      if (el.dataset.drawn) { return; }
      var fig = JSON.parse(el.dataset.figure);
      var layout = Object.assign({ margin: { l: 48, r: 16, t: 32, b: 40 }, autosize: true }, fig.layout || {});
      Plotly.newPlot(el, fig.data || [], layout, { responsive: true, displaylogo: false, displayModeBar: false });
      el.dataset.drawn = "1";
    });
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
  window.addEventListener("load", function () { draw(document); });
  // Confirm buttons carry data-confirm (htmx's hx-confirm covers htmx requests; this covers plain forms).
  document.addEventListener("submit", function (event) {
    var msg = event.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { event.preventDefault(); }
  });
})();
