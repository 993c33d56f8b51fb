// The Curation panel of the data-collection page: a histogram per measure with its bounds as
// dashed lines that can be dragged (grey at the axis' edge: not set) (or typed), the accepted count recomputed here at once, Save
// to record the thresholds, and the verdict of the movie the browser shows, with manual
// accept/reject. The rule is the server's (cryolive.db.repo.curation.judge): a measure not yet
// recorded rejects nothing, a bound not set rejects nothing, a manual decision wins.
"use strict";
(() => {
  const root = document.getElementById("collection");
  const panel = document.getElementById("curation");
  if (!root || !panel) return;
  const id = root.dataset.id, csrf = root.dataset.csrf;
  const charts = window.cryoliveCharts; // charts.js: when Plotly is there, which chart when
  const $ = (sel) => document.getElementById(sel);
  const seg = (value) => encodeURIComponent(String(value));
  const MEASURES = [
    { name: "total_motion", column: "total_motion_a", min: null, max: "total_motion_max_a", title: "Total motion", unit: "Å" },
    { name: "early_motion", column: "early_motion_a", min: null, max: "early_motion_max_a", title: "Early motion", unit: "Å" },
    { name: "defocus", column: "defocus_um", min: "defocus_min_um", max: "defocus_max_um", title: "Defocus", unit: "µm" },
    { name: "astigmatism", column: "astigmatism_a", min: null, max: "astigmatism_max_a", title: "Astigmatism", unit: "Å" },
    { name: "ctf_resolution", column: "resolution_a", min: null, max: "ctf_resolution_max_a", title: "CTF fit resolution", unit: "Å" },
    { name: "ctf_fom", column: "ctf_fom", min: "ctf_fom_min", max: null, title: "CTF figure of merit", unit: "" },
    { name: "ice", column: "ice_median", min: "ice_min", max: "ice_max", title: "Relative ice thickness", unit: "" },
    { name: "particles", column: "particles", min: "particles_min", max: "particles_max", title: "Particles per micrograph", unit: "", integer: true },
  ];
  const TITLES = Object.fromEntries(MEASURES.map((m) => [m.name, m.title.toLowerCase()]));
  TITLES.manual = "rejected by hand";
  let state = null; // the API's last answer
  let limits = {}; // the thresholds shown (edited, perhaps not saved)
  let dirty = false;
  let redrawing = false;
  let fetched = 0;

  const values = (m) => state.movies[m.column].filter((v) => v !== null);
  const isSet = (bound) => limits[bound] !== null && limits[bound] !== undefined;
  function span(m) {
    // the x axis: the data and the bounds set, with a margin; a bound not set sits at its edge
    const v = values(m).concat([m.min, m.max].filter((b) => b && isSet(b)).map((b) => limits[b]));
    const lo = Math.min(...v), hi = Math.max(...v);
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
    return [lo - pad, hi + pad];
  }
  const rounded = (m, x) => (m.integer ? Math.round(x) : Number(x.toPrecision(4)));

  function judge(i) {
    const mv = state.movies;
    const reasons = [];
    for (const m of MEASURES) {
      const v = mv[m.column][i];
      if (v === null) continue;
      const lo = m.min ? limits[m.min] : null, hi = m.max ? limits[m.max] : null;
      if ((lo !== null && lo !== undefined && v < lo) || (hi !== null && hi !== undefined && v > hi)) reasons.push(m.name);
    }
    if (mv.manual[i] === "accept") return [true, reasons];
    if (mv.manual[i] === "reject") return [false, reasons.concat("manual")];
    return [reasons.length === 0, reasons];
  }

  function count() {
    const n = state.movies.movie_id.length;
    let accepted = 0;
    for (let i = 0; i < n; i++) if (judge(i)[0]) accepted++;
    const el = $("curation-count");
    el.textContent = `${accepted} of ${n} movies accepted, ${n - accepted} rejected`;
    el.dataset.accepted = String(accepted);
    $("curation-save").disabled = !dirty;
    verdict();
  }

  function shapes(m, range) {
    const inside = (range[1] - range[0]) * 0.01;
    return ["min", "max"].filter((w) => m[w]).map((w) => {
      const bound = m[w], set = isSet(bound);
      const x = set ? limits[bound] : w === "min" ? range[0] + inside : range[1] - inside;
      return { type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1, name: bound,
        line: { color: set ? "#b3261e" : "#9a9a9a", width: 3, dash: "dash" } };
    });
  }

  function figure(m) {
    let fig = $("cur-fig-" + m.name);
    if (fig) return fig;
    fig = document.createElement("figure");
    fig.id = "cur-fig-" + m.name;
    const chart = document.createElement("div");
    chart.className = "chart"; chart.id = "cur-" + m.name;
    chart.setAttribute("role", "img"); chart.setAttribute("aria-label", `Histogram of ${m.title.toLowerCase()} with its bounds`);
    const bounds = document.createElement("div");
    bounds.className = "bounds";
    for (const which of ["min", "max"]) {
      if (!m[which]) continue;
      const label = document.createElement("label");
      label.textContent = `${m.title} ${which}${m.unit ? ` (${m.unit})` : ""} `;
      const input = document.createElement("input");
      input.type = "number"; input.step = "any"; input.id = "bound-" + m[which]; input.dataset.bound = m[which];
      input.placeholder = "not set";
      input.addEventListener("change", () => {
        limits[m[which]] = input.value === "" ? null : Number(input.value);
        dirty = true; render();
      });
      label.append(input);
      bounds.append(label);
    }
    fig.append(chart, bounds);
    $("curation-charts").append(fig);
    chart.dataset.measure = m.name;
    return fig;
  }

  function draw(m) {
    const fig = figure(m);
    const v = values(m);
    fig.hidden = v.length === 0;
    for (const input of fig.querySelectorAll("input")) {
      const value = limits[input.dataset.bound];
      if (document.activeElement !== input) input.value = value === null || value === undefined ? "" : String(value);
    }
    if (v.length === 0) return;
    const el = $("cur-" + m.name);
    charts.schedule(el, () => plot(m, el, values(m))); // drawn when near the screen
  }

  function plot(m, el, v) {
    const range = span(m);
    redrawing = true;
    Plotly.react(el, [{ x: v, type: "histogram", marker: { color: "#0a6b2d" },
      hovertemplate: `%{x}${m.unit ? " " + m.unit : ""}: %{y} movies<extra></extra>` }],
    { title: { text: m.title, font: { size: 14 } }, margin: { l: 50, r: 10, t: 36, b: 44 }, font: { size: 12 },
      xaxis: { title: { text: m.title + (m.unit ? ` (${m.unit})` : "") }, range, autorange: false },
      yaxis: { title: { text: "Movies" } }, shapes: shapes(m, range), showlegend: false },
    { responsive: true, displaylogo: false, edits: { shapePosition: true } }).then(() => { redrawing = false; });
    if (el.dataset.listening) return;
    el.dataset.listening = "1";
    el.on("plotly_relayout", (event) => {
      if (redrawing) return;
      const moved = new Set(Object.keys(event).map((k) => (k.match(/^shapes\[(\d+)\]/) || [])[1]).filter(Boolean));
      if (!moved.size) return;
      const drawn = el.layout.shapes;
      for (const index of moved) {
        const shape = drawn[Number(index)];
        limits[shape.name] = rounded(m, (Number(shape.x0) + Number(shape.x1)) / 2);
      }
      dirty = true;
      render();
    });
  }

  function render() {
    for (const m of MEASURES) draw(m);
    count();
  }

  function origin() {
    const own = state.own
      ? `This collection's thresholds, set by ${state.changed_by || "?"} ${(state.changed_at || "").replace("T", " ").slice(0, 16)} UTC.`
      : "The facility's default thresholds (this collection has none of its own yet).";
    $("curation-origin").textContent = own;
  }

  function accept(answer, keepLimits) {
    state = answer;
    if (!keepLimits) { limits = { ...answer.thresholds }; dirty = false; }
    document.body.dataset.curation = "loaded";
    origin();
    render();
  }

  async function load() {
    fetched = Date.now();
    const response = await fetch(`/api/collections/${seg(id)}/curation`);
    if (!response.ok) return;
    const answer = await response.json();
    await charts.ready;
    accept(answer, dirty);
  }

  const problems = async (response) => {
    const body = await response.json().catch(() => ({}));
    if (Array.isArray(body.detail)) return body.detail.map((d) => `${d.loc.slice(1).join(".") || "thresholds"}: ${d.msg}`).join("; ");
    return body.detail || `${response.status}`;
  };

  async function send(url, method, body) {
    const response = await fetch(url, { method, headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) });
    if (!response.ok) { $("curation-status").textContent = `Not saved: ${await problems(response)}`; return null; }
    return response.json();
  }

  $("curation-save").addEventListener("click", async () => {
    const body = Object.fromEntries(MEASURES.flatMap((m) => [m.min, m.max]).filter(Boolean).map((b) => [b, limits[b] ?? null]));
    const answer = await send(`/api/collections/${seg(id)}/curation`, "PUT", body);
    if (!answer) return;
    accept(answer, false);
    $("curation-status").textContent = "Saved: 2D batches and exports use these from now on.";
  });
  $("curation-reset").addEventListener("click", () => {
    for (const key of Object.keys(limits)) limits[key] = null;
    dirty = true; render();
  });

  function verdict() {
    const box = $("movie-curation");
    const movie = Number(document.body.dataset.movie);
    const i = state ? state.movies.movie_id.indexOf(movie) : -1;
    box.hidden = i < 0;
    if (i < 0) return;
    const [ok, reasons] = judge(i);
    const text = $("movie-verdict");
    text.className = ok ? "accepted" : "rejected";
    const manual = state.movies.manual[i];
    text.textContent = ok ? `Accepted${manual === "accept" ? " (by hand)" : ""}`
      : `Rejected: ${reasons.map((r) => TITLES[r]).join(", ")}`;
    box.dataset.movie = String(movie);
  }

  async function decide(decision) {
    const movie = Number(document.body.dataset.movie);
    const answer = await send(`/api/movies/${seg(movie)}/curation`, "POST", { decision });
    if (answer) accept(answer, dirty);
  }
  $("movie-accept").addEventListener("click", () => decide("accept"));
  $("movie-reject").addEventListener("click", () => decide("reject"));
  $("movie-auto").addEventListener("click", () => decide(null));

  // the movie browser says which movie it shows on <body data-movie>; live updates count on
  // #live-state[data-updates]: new movies are fetched at most every 30 s
  new MutationObserver(() => { if (state) verdict(); }).observe(document.body, { attributes: true, attributeFilter: ["data-movie"] });
  const live = $("live-state");
  if (live) new MutationObserver(() => { if (Date.now() - fetched > 30_000) load(); }).observe(live, { attributes: true, attributeFilter: ["data-updates"] });
  load();
})();
