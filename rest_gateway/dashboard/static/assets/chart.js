// A stacked bar chart in plain SVG: one bar per day, one colour per series. The table beside it carries the
// same numbers for screen readers and for copying.

const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** days: [label]; series: [{name, values: [number per day]}]; format: value -> text. */
export function stackedBars({ days, series, format, title }) {
  const width = 560;
  const height = 180;
  const pad = { left: 64, right: 8, top: 10, bottom: 26 };
  const totals = days.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(...totals, 0) || 1;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height + 22}`, role: "img", "aria-labelledby": "chart-title" });
  root.append(svg("title", { id: "chart-title" }, title));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - fraction);
    root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, format(max * fraction)));
  }
  const slot = plotW / Math.max(days.length, 1);
  const barW = Math.min(48, slot * 0.7);
  days.forEach((day, i) => {
    const x = pad.left + slot * i + (slot - barW) / 2;
    let y = pad.top + plotH;
    series.forEach((s, j) => {
      const value = s.values[i] ?? 0;
      if (!value) return;
      const h = Math.max(1, (value / max) * plotH);
      y -= h;
      const rect = svg("rect", { x, y, width: barW, height: h, fill: PALETTE[j % PALETTE.length] });
      rect.append(svg("title", {}, `${day} · ${s.name}: ${format(value)}`));
      root.append(rect);
    });
    root.append(svg("text", { x: x + barW / 2, y: height - 8, "text-anchor": "middle", class: "axis" }, /^\d{4}-\d\d-\d\d$/.test(day) ? day.slice(5) : day));
  });
  let lx = pad.left;
  series.forEach((s, j) => {
    root.append(svg("rect", { x: lx, y: height + 6, width: 10, height: 10, fill: PALETTE[j % PALETTE.length] }));
    const label = svg("text", { x: lx + 14, y: height + 15, class: "legend" }, s.name);
    root.append(label);
    lx += 24 + s.name.length * 7;
  });
  return root;
}
