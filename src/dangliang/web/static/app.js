// dangliang workbench: small progressive enhancement over server-rendered pages.
// - draws every chart whose ECharts option the server wrote next to it, fetching ECharts
//   (~1 MB) only on a page that has a chart: most pages have none;
// - `data-confirm` on a form asks before it is sent;
// - `data-poll` on an element refreshes it from its URL until it says it is finished;
// - a submit button with `data-busy` says what is happening while a long request works;
// - a file input with `data-max-bytes` refuses a file over the server's upload limit at once
//   (`data-too-large` says why) instead of sending it to be refused.
(function () {
  "use strict";
  var lang = document.documentElement.lang === "en" ? "en" : "zh";

  function money(value) {
    var n = Number(value);
    if (!isFinite(n)) { return String(value); }
    var text = n.toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return lang === "en" ? "CNY " + text : text + " 元";
  }
  function plain(value) {
    var n = Number(value);
    return isFinite(n) ? n.toLocaleString("zh-CN", { maximumFractionDigits: 4 }) : String(value);
  }

  function draw(el) {
    var source = document.querySelector('script[data-chart-for="' + el.id + '"]');
    if (!source || typeof echarts === "undefined") { return; }
    var option = JSON.parse(source.textContent);
    var unit = option.dl_unit;  // "yuan": the tooltip writes money exactly as the tables do
    delete option.dl_unit;
    option.tooltip = Object.assign({ trigger: "axis", confine: true }, option.tooltip || {});
    option.tooltip.valueFormatter = unit === "yuan" ? money : plain;
    option.aria = Object.assign({ enabled: true }, option.aria || {});
    option.animation = false;
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption(option);
    if (option.dl_links) {  // a bar opens the page behind it (e.g. an institution)
      chart.on("click", function (p) {
        var href = option.dl_links[p.name];
        if (href) { window.location.href = href; }
      });
    }
    window.addEventListener("resize", function () { chart.resize(); });
  }

  var ECHARTS = "/static/vendor/echarts.min.js";

  function drawCharts() {
    var charts = document.querySelectorAll(".chart");
    if (!charts.length) { return; }
    // A script added before the page's load event holds that event until it has run, so a
    // page counts as loaded with its charts drawn.
    var script = document.createElement("script");
    script.src = ECHARTS;
    script.onload = function () { charts.forEach(draw); };
    document.head.appendChild(script);
  }

  function poll(el) {
    var url = el.getAttribute("data-poll");
    var timer = setInterval(function () {
      fetch(url, { headers: { "Accept": "text/html-fragment" }, credentials: "same-origin" })
        .then(function (r) { return r.text().then(function (t) { return [r.status, t]; }); })
        .then(function (got) {
          el.innerHTML = got[1];
          var done = el.querySelector("[data-finished]");
          if (done || got[0] >= 400) { clearInterval(timer); el.removeAttribute("aria-busy"); }
        })
        .catch(function () { clearInterval(timer); });
    }, 700);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("button[data-busy]").forEach(function (b) {
      if (!b.form) { return; }
      b.form.addEventListener("submit", function () {
        b.textContent = b.getAttribute("data-busy");
        b.setAttribute("aria-busy", "true");
        setTimeout(function () { b.disabled = true; }, 0);  // after the form has been sent
      });
    });
    document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
      var limit = Number(input.getAttribute("data-max-bytes"));
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        var over = file && limit > 0 && file.size > limit;
        input.setCustomValidity(over ? input.getAttribute("data-too-large") : "");
        if (over) { input.reportValidity(); }
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
  });
})();
