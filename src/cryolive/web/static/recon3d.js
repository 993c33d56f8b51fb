// The 3D panel: the newest map as an isosurface (threshold in sd above the mean, a slider)
// with its three central slices, FSC curves, the angular distribution, the B-factor plot
// (Rosenthal-Henderson), the 3D classes side by side, downloads and the history of 3D jobs.
// Everything comes from /api/collections/{id}/3d and /api/3d/{map}/…; nothing from a CDN.
"use strict";
(() => {
  const section = document.getElementById("recon3d");
  if (!section) return;
  const id = section.dataset.id;
  const $ = (name) => document.getElementById(name);
  const status = $("recon3d-status"), body = $("recon3d-body");
  const config = { displaylogo: false, responsive: true };
  // the full plotly.js (the isosurface is not in the page's partial bundle), fetched when the
  // panel comes near the screen and has something to draw (charts.js full())
  let P = null;
  const layout = (title, x, y) => ({ title: { text: title, font: { size: 14 } },
    margin: { l: 56, r: 10, t: 36, b: 44 }, xaxis: { title: { text: x } }, yaxis: { title: { text: y } } });
  const get = (url) => fetch(url, { credentials: "same-origin" }).then((r) => {
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    return r.json();
  });
  const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const text = (tag, content, cls) => {
    const el = document.createElement(tag);
    el.textContent = content;
    if (cls) el.className = cls;
    return el;
  };

  function slice(map, axis) { // the central section perpendicular to axis (0: z, 1: y, 2: x)
    const b = map.box, c = Math.floor(b / 2), v = map.values, rows = [];
    for (let i = 0; i < b; i++) {
      const row = [];
      for (let j = 0; j < b; j++) {
        const index = axis === 0 ? (c * b + i) * b + j : axis === 1 ? (i * b + c) * b + j : (i * b + j) * b + c;
        row.push(v[index]);
      }
      rows.push(row);
    }
    return rows;
  }

  function drawMap(map) {
    const b = map.box, n = b * b * b, x = new Array(n), y = new Array(n), z = new Array(n);
    for (let i = 0; i < n; i++) { x[i] = i % b; y[i] = Math.floor(i / b) % b; z[i] = Math.floor(i / (b * b)); }
    let top = -Infinity;
    for (const value of map.values) if (value > top) top = value;
    const slider = $("map-threshold"), shown = $("map-threshold-value");
    const level = () => map.mean + Number(slider.value) * map.sd;
    shown.textContent = Number(slider.value).toFixed(1);
    P.react($("map3d"), [{ type: "isosurface", x, y, z, value: map.values, isomin: level(), isomax: top,
      surface: { count: 1 }, caps: { x: { show: false }, y: { show: false }, z: { show: false } },
      colorscale: [[0, "#0a6b2d"], [1, "#0a6b2d"]], showscale: false, flatshading: false }],
    { margin: { l: 0, r: 0, t: 24, b: 0 }, title: { text: `${b}³ voxels, ${fmt(map.voxel_a, 2)} Å`, font: { size: 12 } },
      scene: { aspectmode: "cube", xaxis: { visible: false }, yaxis: { visible: false }, zaxis: { visible: false } } }, config);
    slider.oninput = () => {
      shown.textContent = Number(slider.value).toFixed(1);
      P.restyle($("map3d"), { isomin: [level()] });
    };
    ["z", "y", "x"].forEach((name, axis) => {
      P.react($(`map-slice-${name}`), [{ type: "heatmap", z: slice(map, axis), colorscale: "Greys", reversescale: true, showscale: false }],
        { margin: { l: 4, r: 4, t: 24, b: 4 }, title: { text: `central ${name} section`, font: { size: 12 } },
          xaxis: { visible: false }, yaxis: { visible: false, scaleanchor: "x" } }, config);
    });
  }

  async function preview(mapId) { // bytes back to values: minimum + byte × (maximum − minimum) / 255
    const map = await get(`/api/3d/${mapId}/preview`);
    const bytes = Uint8Array.from(atob(map.values_base64), (c) => c.charCodeAt(0));
    const step = (map.maximum - map.minimum) / 255;
    map.values = Array.from(bytes, (q) => map.minimum + q * step);
    return map;
  }

  async function showMap(mapId) {
    body.dataset.map = mapId;
    drawMap(await preview(mapId));
  }

  function downloads(panel) {
    const list = $("downloads3d");
    list.replaceChildren();
    const link = (mapId, which, label) => {
      const a = text("a", label);
      a.href = `/api/3d/${mapId}/file?which=${which}`;
      a.setAttribute("download", "");
      return a;
    };
    for (const r of [...panel.refinements].reverse()) {
      const li = text("li", `Refinement of run ${r.run_number} (${r.particles} particles, ${fmt(r.resolution_a)} Å): `);
      [["map", "sharpened map"], ["refined", "unsharpened map"], ["half1", "half map 1"], ["half2", "half map 2"], ["mask", "mask"]]
        .forEach(([which, label], k) => { if (k) li.append(" · "); li.append(link(r.particle_classification_id, which, label)); });
      list.append(li);
    }
    for (const run of [...panel.runs].reverse()) {
      const li = text("li", `3D run ${run.run_number} classes: `);
      run.classes.filter((c) => c.has_map).forEach((c, k) => { if (k) li.append(" · "); li.append(link(c.particle_classification_id, "map", `class ${c.class_number}`)); });
      list.append(li);
    }
  }

  function history(panel) {
    const rows = $("history3d").querySelector("tbody");
    rows.replaceChildren();
    const jobs = [...panel.runs.map((r) => ({ kind: "initial model + 3D classification", run: r.run_number, particles: r.particles,
      result: `${r.classes.length} classes, best ${fmt(Math.min(...r.classes.map((c) => c.resolution_a ?? Infinity)))} Å`, pixel: r.pixel_size_a })),
    ...panel.refinements.map((r) => ({ kind: "refinement + postprocess", run: r.run_number, particles: r.particles,
      result: `${fmt(r.resolution_a, 2)} Å`, pixel: r.pixel_size_a }))];
    for (const j of jobs) {
      const tr = document.createElement("tr");
      tr.append(text("td", j.kind), text("td", String(j.run), "num"), text("td", String(j.particles), "num"),
        text("td", `${fmt(j.pixel, 2)} Å`, "num"), text("td", j.result));
      rows.append(tr);
    }
  }

  async function classes(panel) {
    const box = $("classes3d");
    box.replaceChildren();
    const run = panel.runs[panel.runs.length - 1];
    if (!run) return;
    for (const c of run.classes) {
      const card = document.createElement("figure");
      card.className = `class3d-card${c.selected ? " selected" : ""}`;
      card.dataset.class = c.class_number;
      const plot = document.createElement("div");
      plot.className = "chart tiny";
      card.append(plot, text("figcaption", `#${c.class_number}${c.selected ? " ★ refined" : ""} · ${c.particles} particles · ${fmt(c.resolution_a)} Å · efficiency ${fmt(c.angular_efficiency, 2)}`));
      box.append(card);
      if (!c.has_map) continue;
      try { // one class's map that cannot be shown (missing, outside the visit) spoils no other
        const map = await preview(c.particle_classification_id);
        P.react(plot, [{ type: "heatmap", z: slice(map, 0), colorscale: "Greys", reversescale: true, showscale: false }],
          { margin: { l: 2, r: 2, t: 2, b: 2 }, xaxis: { visible: false }, yaxis: { visible: false, scaleanchor: "x" } }, { displayModeBar: false, staticPlot: true });
      } catch (error) {
        plot.replaceChildren(text("p", "map not available", "empty"));
      }
    }
  }

  async function refinementCharts(r) {
    const fsc = await get(`/api/3d/${r.particle_classification_id}/fsc`);
    const names = { corrected: "corrected (masked)", masked: "masked", unmasked: "unmasked", half_maps: "half maps", phase_randomised: "phase-randomised" };
    const traces = Object.entries(fsc.curves).map(([name, values]) => ({ x: fsc.resolution_per_a, y: values, mode: "lines", name: names[name] || name }));
    traces.push({ x: [0, fsc.resolution_per_a[fsc.resolution_per_a.length - 1]], y: [0.143, 0.143], mode: "lines", name: "0.143", line: { dash: "dot", color: "#888" } });
    P.react($("chart-fsc"), traces, layout(`FSC · ${fmt(fsc.final_resolution_a, 2)} Å`, "resolution (1/Å)", "FSC"), config);
    const angles = await get(`/api/3d/${r.particle_classification_id}/angles`);
    P.react($("chart-angles"), [{ type: "heatmap", x: angles.rot_deg, y: angles.tilt_deg, z: angles.counts, colorscale: "Viridis" }],
      layout(`Angular distribution (${angles.particles} particles)`, "rot (°)", "tilt (°)"), config);
    const points = r.points;
    const traces2 = [{ x: points.map((p) => 1 / (p.resolution_a * p.resolution_a)), y: points.map((p) => Math.log(p.particles)), mode: "markers", name: "refinements",
      text: points.map((p) => `${p.particles} particles, ${fmt(p.resolution_a, 2)} Å`) }];
    if (r.bfactor_a2) {
      const xs = traces2[0].x, slope = r.bfactor_a2 / 2, x0 = Math.min(...xs), x1 = Math.max(...xs);
      const meanX = xs.reduce((a, b) => a + b, 0) / xs.length, meanY = traces2[0].y.reduce((a, b) => a + b, 0) / xs.length;
      traces2.push({ x: [x0, x1], y: [meanY + slope * (x0 - meanX), meanY + slope * (x1 - meanX)], mode: "lines", name: `B = ${fmt(r.bfactor_a2, 0)} Å²` });
    }
    P.react($("chart-bfactor"), traces2, layout("B-factor (Rosenthal-Henderson)", "1/d² (Å⁻²)", "ln particles"), config);
  }

  async function load() {
    const panel = await get(`/api/collections/${id}/3d`);
    if (!panel.runs.length && !panel.refinements.length) {
      status.textContent = `No 3D yet (${panel.selected_particles} particles in selected 2D classes).`;
      section.dataset.state = "empty";
      return;
    }
    const full = window.cryoliveCharts.full(); // on its way while the lists are built
    status.textContent = `${panel.selected_particles} particles in selected 2D classes · ${panel.runs.length} 3D run(s) · ${panel.refinements.length} refinement(s)`;
    body.hidden = false;
    const choice = $("map-choice");
    choice.replaceChildren();
    for (const r of [...panel.refinements].reverse()) {
      const o = text("option", `refinement of run ${r.run_number}: ${fmt(r.resolution_a, 2)} Å`);
      o.value = r.particle_classification_id;
      choice.append(o);
    }
    for (const run of [...panel.runs].reverse()) {
      for (const c of run.classes.filter((c) => c.has_map)) {
        const o = text("option", `run ${run.run_number} class ${c.class_number}`);
        o.value = c.particle_classification_id;
        choice.append(o);
      }
    }
    choice.onchange = () => showMap(choice.value);
    downloads(panel);
    history(panel);
    const refined = panel.refinements[panel.refinements.length - 1];
    $("refinement-charts").hidden = !refined;
    P = await full;
    await Promise.all([choice.value ? showMap(choice.value) : null, classes(panel), refined ? refinementCharts(refined) : null]);
    section.dataset.state = "drawn";
  }

  const start = () => load().catch((error) => {
    status.textContent = `3D results could not be loaded (${error.message}).`;
    section.dataset.state = "failed";
  });
  // the panel loads when it comes near the screen: a visit to the page's top costs nothing
  if (!("IntersectionObserver" in window)) { start(); return; }
  const watch = new IntersectionObserver((seen) => {
    if (!seen.some((entry) => entry.isIntersecting)) return;
    watch.disconnect();
    start();
  }, { rootMargin: "200px" });
  watch.observe(section);
})();
