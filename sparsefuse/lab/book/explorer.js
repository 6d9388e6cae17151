// Explorer view: pick a grid size G (or a density) on a precomputed sweep and
// read the time of every path at that point. All computing happens here, in
// the browser, so the static book works with no kernel and no network.

const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

function uniq(values) {
  return [...new Set(values)];
}

function fmt(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return Number(v.toPrecision(digits)).toString();
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function render({ model, el: root }) {
  const rows = model.get("data") || [];
  const xCol = model.get("x");
  const yCol = model.get("y");
  const seriesCol = model.get("series");
  const facetCol = model.get("facet");
  const baseline = model.get("baseline");
  const xs = uniq(rows.map((r) => r[xCol])).sort((a, b) => a - b);
  const facets = facetCol ? uniq(rows.map((r) => r[facetCol])) : [null];
  const series = uniq(rows.map((r) => r[seriesCol]));
  const densityOf = new Map(xs.map((x) => [x, rows.find((r) => r[xCol] === x).density]));
  // density falls as G grows: its slider runs over the same points, reversed
  const byDensity = [...xs].sort((a, b) => densityOf.get(a) - densityOf.get(b));

  const box = el("div", { class: "sf-explorer" });
  box.style.cssText = "font-family:system-ui,sans-serif;font-size:14px;border:1px solid #ccc;border-radius:6px;padding:10px;max-width:720px";
  const title = el("div", { class: "sf-title" }, model.get("title"));
  title.style.cssText = "font-weight:600;margin-bottom:6px";
  box.appendChild(title);
  if (model.get("source")) {
    // which run the data is from (GPU, profile, commit): the reader must never take a smoke run for a result
    const source = el("div", { class: "sf-source" }, `data: ${model.get("source")}`);
    source.style.cssText = "font-size:13px;color:#444;margin-bottom:6px";
    box.appendChild(source);
  }

  const controls = el("div", { class: "sf-controls" });
  controls.style.cssText = "display:grid;grid-template-columns:auto 1fr auto;gap:4px 10px;align-items:center";
  const gSlider = el("input", { type: "range", min: 0, max: Math.max(xs.length - 1, 0), step: 1, class: "sf-slider-G", "aria-label": "grid size G" });
  const dSlider = el("input", { type: "range", min: 0, max: Math.max(xs.length - 1, 0), step: 1, class: "sf-slider-density", "aria-label": "density" });
  const gValue = el("span", { class: "sf-value-G" });
  const dValue = el("span", { class: "sf-value-density" });
  controls.append(el("label", {}, xCol === "G" ? "grid size G" : `grid size (${xCol})`), gSlider, gValue);
  controls.append(el("label", {}, "density (k+1)/(G+k)"), dSlider, dValue);
  let facetSelect = null;
  if (facetCol) {
    facetSelect = el("select", { class: "sf-facet", "aria-label": facetCol });
    for (const f of facets) facetSelect.appendChild(el("option", { value: f }, f));
    controls.append(el("label", {}, facetCol === "mode" ? "pass" : facetCol), facetSelect, el("span"));
  }
  box.appendChild(controls);

  const readout = el("div", { class: "sf-readout", "aria-live": "polite" });
  readout.style.cssText = "margin:8px 0";
  box.appendChild(readout);
  const W = 520, H = 260, M = { l: 56, r: 110, t: 10, b: 36 };
  const svg = svgEl("svg", { class: "sf-plot", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
  box.appendChild(svg);
  root.appendChild(box);

  function state() {
    const idx = Math.min(Math.max(model.get("index"), 0), Math.max(xs.length - 1, 0));
    const facet = facetCol ? (model.get("facet_value") || facets[0]) : null;
    return { idx, x: xs[idx], facet };
  }

  function pick(facet) {
    return rows.filter((r) => !facetCol || r[facetCol] === facet);
  }

  function drawReadout(s) {
    const sub = pick(s.facet).filter((r) => r[xCol] === s.x);
    const base = sub.find((r) => r[seriesCol] === baseline && r.status === "ok");
    const k = sub.length ? sub[0].k : undefined;
    readout.textContent = "";
    const head = el("div", { class: "sf-readout-head" },
      `${xCol} = ${s.x}` + (k !== undefined ? `, k = ${k}` : "") +
      ` · density ${fmt(densityOf.get(s.x))}` + (facetCol ? ` · ${s.facet}` : ""));
    readout.appendChild(head);
    const table = el("table", { class: "sf-readout-table" });
    table.style.cssText = "border-collapse:collapse;margin:4px 0 0 0";
    const hdr = el("tr");
    for (const h of [seriesCol, `${yCol}`, baseline ? `× ${baseline}` : "", "status"]) {
      const th = el("th", {}, h);
      th.style.cssText = "text-align:left;padding:1px 10px 1px 0;border-bottom:1px solid #ccc";
      hdr.appendChild(th);
    }
    table.appendChild(hdr);
    for (const r of sub) {
      const tr = el("tr");
      const ratio = base && r.status === "ok" ? r[yCol] / base[yCol] : null;
      for (const v of [r[seriesCol], r.status === "ok" ? fmt(r[yCol]) : "—", baseline ? (ratio === null ? "—" : `${fmt(ratio)}×`) : "", r.status]) {
        const td = el("td", {}, v);
        td.style.cssText = "padding:1px 10px 1px 0";
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    readout.appendChild(table);
  }

  function drawPlot(s) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const sub = pick(s.facet).filter((r) => r.status === "ok" && r[yCol] > 0);
    if (!sub.length || !xs.length) {
      svg.appendChild(svgEl("text", { x: 10, y: 20 })).textContent = "no successful rows";
      return;
    }
    const lx = (v) => Math.log10(v);
    const ys = sub.map((r) => lx(r[yCol]));
    const x0 = lx(xs[0]), x1 = lx(xs[xs.length - 1]) + (xs.length === 1 ? 1 : 0);
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    const px = (v) => M.l + ((lx(v) - x0) / (x1 - x0)) * (W - M.l - M.r);
    const py = (v) => H - M.b - ((lx(v) - y0) / (y1 - y0)) * (H - M.t - M.b);
    svg.appendChild(svgEl("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: "none", stroke: "#999" }));
    for (const x of xs) {
      const t = svgEl("text", { x: px(x), y: H - M.b + 14, "text-anchor": "middle", "font-size": 10 });
      t.textContent = x;
      svg.appendChild(t);
    }
    const xl = svgEl("text", { x: (M.l + W - M.r) / 2, y: H - 4, "text-anchor": "middle", "font-size": 11 });
    xl.textContent = `${xCol} (log)`;
    svg.appendChild(xl);
    for (const v of [y0, (y0 + y1) / 2, y1]) {
      const t = svgEl("text", { x: M.l - 4, y: py(10 ** v) + 3, "text-anchor": "end", "font-size": 10 });
      t.textContent = fmt(10 ** v, 2);
      svg.appendChild(t);
    }
    const yl = svgEl("text", { x: 12, y: (M.t + H - M.b) / 2, "font-size": 11, transform: `rotate(-90 12 ${(M.t + H - M.b) / 2})`, "text-anchor": "middle" });
    yl.textContent = `${yCol} (log)`;
    svg.appendChild(yl);
    svg.appendChild(svgEl("line", { class: "sf-marker", x1: px(s.x), x2: px(s.x), y1: M.t, y2: H - M.b, stroke: "#444", "stroke-dasharray": "4 3" }));
    series.forEach((name, i) => {
      const pts = sub.filter((r) => r[seriesCol] === name).sort((a, b) => a[xCol] - b[xCol]);
      const color = COLORS[i % COLORS.length];
      const ly = M.t + 12 + i * 14;
      svg.appendChild(svgEl("rect", { x: W - M.r + 8, y: ly - 8, width: 10, height: 10, fill: color }));
      const lt = svgEl("text", { x: W - M.r + 22, y: ly + 1, "font-size": 11 });
      lt.textContent = name + (pts.length ? "" : " (none)");
      svg.appendChild(lt);
      if (!pts.length) return;
      svg.appendChild(svgEl("polyline", { points: pts.map((r) => `${px(r[xCol])},${py(r[yCol])}`).join(" "), fill: "none", stroke: color, "stroke-width": 1.6 }));
      for (const r of pts) {
        const on = r[xCol] === s.x;
        svg.appendChild(svgEl("circle", { cx: px(r[xCol]), cy: py(r[yCol]), r: on ? 4.5 : 2.5, fill: on ? color : "#fff", stroke: color }));
      }
    });
  }

  function update() {
    const s = state();
    gSlider.value = s.idx;
    dSlider.value = byDensity.indexOf(s.x);
    gValue.textContent = String(s.x);
    dValue.textContent = fmt(densityOf.get(s.x));
    if (facetSelect) facetSelect.value = s.facet;
    drawReadout(s);
    drawPlot(s);
  }

  function commit(changes) {
    for (const [k, v] of Object.entries(changes)) model.set(k, v);
    try {
      model.save_changes();
    } catch (err) {
      // no kernel behind the static page: the local state is all there is
    }
  }

  gSlider.addEventListener("input", () => commit({ index: Number(gSlider.value) }));
  dSlider.addEventListener("input", () => commit({ index: xs.indexOf(byDensity[Number(dSlider.value)]) }));
  if (facetSelect) facetSelect.addEventListener("change", () => commit({ facet_value: facetSelect.value }));
  model.on("change:index", update);
  model.on("change:facet_value", update);
  update();
  return () => {
    model.off("change:index", update);
    model.off("change:facet_value", update);
  };
}

export default { render };
