// A small SVG line chart drawn from our own data: no library, no CDN.
// Usage: EventshopCharts.line(element, {series: [{name, color, points: [[t, v], ...]}], yLabel})
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";

  function el(name, attributes, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function line(container, { series, yLabel = "", height = 180 }) {
    const width = container.clientWidth || 600;
    const pad = { left: 44, right: 12, top: 12, bottom: 24 };
    const all = series.flatMap((s) => s.points);
    container.innerHTML = "";
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart" }, container);
    if (!all.length) {
      el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart-empty" }, svg).textContent = "no data yet";
      return svg;
    }
    const times = all.map((p) => p[0]);
    const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
    const yMax = Math.max(1, ...all.map((p) => p[1])) * 1.1;
    const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
    const y = (v) => height - pad.bottom - (v / yMax) * (height - pad.top - pad.bottom);
    for (let i = 0; i <= 4; i++) {
      const value = (yMax / 4) * i;
      el("line", { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: "chart-grid" }, svg);
      el("text", { x: pad.left - 6, y: y(value) + 4, "text-anchor": "end", class: "chart-axis" }, svg).textContent =
        value >= 10 ? Math.round(value) : value.toFixed(1);
    }
    el("text", { x: 4, y: pad.top, class: "chart-axis" }, svg).textContent = yLabel;
    series.forEach((s, index) => {
      if (!s.points.length) return;
      const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
      el("path", { d, fill: "none", stroke: s.color, "stroke-width": 2, "data-series": s.name }, svg);
      el("text", { x: pad.left + 8 + index * 150, y: height - 6, fill: s.color, class: "chart-legend" }, svg).textContent = s.name;
    });
    return svg;
  }

  window.EventshopCharts = { line };
})();
