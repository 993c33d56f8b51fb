// The data-collection page: charts, movie browser, live updates. Works on top of the
// server-rendered page; without JavaScript the summary, jobs and forms still work.
"use strict";
(() => {
  const root = document.getElementById("collection");
  if (!root) return;
  const id = root.dataset.id, csrf = root.dataset.csrf;
  const charts = window.cryoliveCharts; // charts.js: when Plotly is there, which chart when
  // What each column is, in the unit shown everywhere on the page (defocus in µm, as in the
  // summary above the charts): scale turns the stored value into it.
  const SERIES = {
    defocus_a: { title: "Defocus", unit: "µm", scale: 1e-4, digits: 2 },
    astigmatism_a: { title: "Astigmatism", unit: "Å", scale: 1, digits: 0 },
    resolution_a: { title: "CTF fit resolution", unit: "Å", scale: 1, digits: 2 },
    total_motion_a: { title: "Total motion", unit: "Å", scale: 1, digits: 1 },
    ice_median: { title: "Relative ice thickness", unit: "", scale: 1, digits: 2 },
    particles: { title: "Particles", unit: "per micrograph", scale: 1, digits: 0 },
  };
  const HISTOGRAMS = ["defocus_a", "resolution_a", "total_motion_a", "ice_median", "particles"];
  const label = (key) => SERIES[key].title + (SERIES[key].unit ? ` (${SERIES[key].unit})` : "");
  const scaled = (key) => (data[key] || []).map((v) => (v === null ? null : v * SERIES[key].scale));
  const value = (key, axis) => `%{${axis}:.${SERIES[key].digits}f}${SERIES[key].unit ? " " + SERIES[key].unit : ""}`;
  const data = { movie_id: [] };
  let current = 0;
  const $ = (sel) => document.getElementById(sel);
  const seg = (value) => encodeURIComponent(String(value)); // one URL path segment or query value
  const layout = (title, x, y) => ({ title: { text: title, font: { size: 14 } }, margin: { l: 64, r: 10, t: 36, b: 44 },
    xaxis: { title: { text: x } }, yaxis: { title: { text: y } }, font: { size: 12 },
    hoverlabel: { bgcolor: "#fff", font: { color: "#111" } } });
  const CONFIG = { responsive: true, displaylogo: false };
  // Above this many movies the per-movie charts are WebGL (scattergl), which only the full
  // plotly.js bundle has: the page's partial bundle draws the rest (charts.js full()).
  const GL = 5000;

  function merge(part) {
    // Rows for movies already known are replaced (their results may have landed since).
    const first = part.movie_id.length ? part.movie_id[0] : null;
    let keep = data.movie_id.length;
    if (first !== null) { keep = data.movie_id.findIndex((m) => m >= first); if (keep < 0) keep = data.movie_id.length; }
    for (const [key, values] of Object.entries(part)) {
      if (!Array.isArray(values)) continue;
      data[key] = (data[key] || []).slice(0, keep).concat(values);
    }
  }

  function watermark() {
    // Movies up to here have every result; ask again only for those after (at most 200 back).
    let i = data.movie_id.length - 1;
    const floor = Math.max(0, data.movie_id.length - 200);
    while (i >= floor && (data.resolution_a[i] === null || data.total_motion_a[i] === null)) i--;
    return i >= 0 ? data.movie_id[i] : 0;
  }

  function draw() {
    const n = data.movie_id.length;
    // An empty collection says so instead of showing empty axes and "Movie 1 of 0".
    for (const el of document.querySelectorAll("[data-needs-movies]")) el.hidden = n === 0;
    if ($("no-movies")) $("no-movies").hidden = n > 0;
    if (!window.Plotly || n === 0) return;
    const type = n > GL && charts.hasFull() ? "scattergl" : "scatter";
    const x = data.movie_id.map((_, i) => i + 1);
    // hover: which movie (its file name, its number in the session and its id), then the
    // value with its unit
    const movies = data.movie_id.map((m, i) => [(data.movie_number || [])[i] ?? i + 1, m,
      (data.name || [])[i] || "?"]);
    const who = "%{customdata[2]}<br>Movie %{customdata[0]} (id %{customdata[1]})";
    const has = (key) => (data[key] || []).some((v) => v !== null);
    for (const key of Object.keys(SERIES)) {
      const el = $("chart-" + key);
      if (!el) continue;
      if (!has(key)) { el.closest("figure").hidden = true; continue; }
      el.closest("figure").hidden = false;
      const y = scaled(key);
      charts.schedule(el, () => {
        charts.plotly(el, type === "scattergl").react(el, [{ x, y, customdata: movies, type, mode: "markers",
          marker: { size: 4, color: "#0b4f9c" }, name: SERIES[key].title,
          hovertemplate: `${who}<br>${SERIES[key].title}: ${value(key, "y")}<extra></extra>` }],
          layout(`${SERIES[key].title} per movie`, "Movie (in acquisition order)", label(key)), CONFIG);
        bind(el, (point) => point.pointIndex);
      });
    }
    for (const key of HISTOGRAMS) {
      const el = $("hist-" + key);
      if (!el) continue;
      if (!has(key)) { el.closest("figure").hidden = true; continue; }
      el.closest("figure").hidden = false;
      const values = scaled(key).filter((v) => v !== null);
      charts.schedule(el, () => Plotly.react(el, [{ x: values, type: "histogram", marker: { color: "#0a6b2d" },
        hovertemplate: `${SERIES[key].title} %{x}${SERIES[key].unit ? " " + SERIES[key].unit : ""}: %{y} movies<extra></extra>` }],
        layout(key === "particles" ? "Particles per micrograph" : SERIES[key].title, label(key), "Movies"), CONFIG));
    }
    const versus = $("chart-particles-defocus");
    if (versus) {
      const drawn = has("particles") && has("defocus_a");
      versus.closest("figure").hidden = !drawn;
      if (drawn) {
        const defocus = scaled("defocus_a"), particles = data.particles;
        charts.schedule(versus, () => {
          charts.plotly(versus, type === "scattergl").react(versus, [{ x: defocus, y: particles, customdata: movies, type, mode: "markers",
            marker: { size: 4, color: "#7a3e9d" },
            hovertemplate: `${who}<br>Defocus: ${value("defocus_a", "x")}<br>Particles: %{y}<extra></extra>` }],
            layout("Particles against defocus", label("defocus_a"), "Particles per micrograph"), CONFIG);
          bind(versus, (point) => point.pointIndex);
        });
      }
    }
    $("movie-count").textContent = n;
    $("movie-index").max = n;
    // usable: the charts on the screen and one screen below it are drawn (charts.js); the
    // others follow as they come near or the browser is idle
    charts.flush();
    document.body.dataset.charts = "drawn";
    charts.settled().then(() => { document.body.dataset.allCharts = "drawn"; });
  }

  function bind(el, index) {
    // a click on a point opens that movie below
    if (!el.on || el.dataset.bound) return;
    el.dataset.bound = "1";
    el.on("plotly_click", (ev) => show(index(ev.points[0])));
  }

  async function load(after) {
    // asked for at once, while plotly.min.js may still be on its way
    const response = await fetch(`/api/collections/${seg(id)}/series?after_movie_id=${seg(after)}`);
    if (!response.ok) return;
    const part = await response.json();
    await charts.ready;
    const fresh = data.movie_id.length === 0;
    merge(part);
    if (data.movie_id.length > GL) await charts.full().catch(() => null); // else SVG, slower
    draw();
    if (fresh && data.movie_id.length) {
      const wanted = Number((location.hash.match(/^#movie=(\d+)$/) || [])[1]); // from a foil hole's list
      show(Math.max(0, data.movie_id.indexOf(wanted)));
    }
  }

  async function show(index) {
    if (!data.movie_id.length) return;
    current = Math.max(0, Math.min(index, data.movie_id.length - 1));
    const movie = data.movie_id[current];
    $("movie-index").value = current + 1;
    const response = await fetch(`/api/movies/${seg(movie)}`);
    if (!response.ok) { $("movie-info").textContent = `Movie ${movie}: ${response.status}`; return; }
    const m = await response.json();
    const fmt = (v, d, scale = 1) => (v === null || v === undefined ? "–" : (Number(v) * scale).toFixed(d));
    $("movie-info").textContent = !m.processed ? `${m.path} · not processed yet` :
      `${m.path} · defocus ${fmt(m.defocus_a, 2, 1e-4)} µm · ` +
      `resolution ${fmt(m.resolution_a, 2)} Å · motion ${fmt(m.total_motion_a, 1)} Å · ice ${fmt(m.ice_median, 2)}`;
    $("movie-info").dataset.processed = String(m.processed);
    for (const kind of ["snapshot", "fft", "ctf_fit", "picks"]) {
      const img = $("img-" + kind);
      if (m.files.includes(kind)) img.src = `/api/movies/${seg(movie)}/files/${seg(kind)}`; else img.removeAttribute("src");
      img.closest("figure").hidden = !m.files.includes(kind); // no blank frame for a missing image
    }
    document.body.dataset.movie = String(movie);
    ctfProfile(movie, m);
    if (m.files.includes("drift") && window.Plotly) {
      const drift = await (await fetch(`/api/movies/${seg(movie)}/files/drift`)).json();
      // equal scales on both axes: the track's shape is the specimen's real movement
      const frame = "Frame %{pointNumber}<br>x %{x:.1f} Å, y %{y:.1f} Å<extra></extra>";
      const look = layout("", "x (Å)", "y (Å)");
      look.yaxis.scaleanchor = "x"; look.yaxis.scaleratio = 1;
      Plotly.react($("drift"), drift.data.map((t) => ({ ...t, type: "scatter", mode: "lines+markers", hovertemplate: frame })),
        look, { displaylogo: false });
    } else if (window.Plotly) Plotly.purge($("drift"));
    $("drift").closest("figure").hidden = !m.files.includes("drift");
  }

  // The CTF profile of the movie shown (CTFFIND's and Patch CTF's 1D plot): the spectrum's
  // rotational average and the fitted model against spatial frequency (1/Å, ticks read as
  // resolution in Å), the local correlation on the right axis, the fit resolution a dashed
  // line. A fit that failed its checks is drawn as such: red frame, its model dashed, titled
  // NOT TRUSTED with the reason. A movie not processed yet says so instead of empty axes.
  const RINGS_A = [50, 30, 20, 10, 8, 6, 5, 4, 3.5, 3, 2.5, 2, 1.5];
  async function ctfProfile(movie, m) {
    const el = $("ctf-profile"), state = $("ctf-profile-state"), fig = $("ctf-profile-figure");
    fig.dataset.state = "loading";
    const empty = (kind, text) => {
      if (window.Plotly) Plotly.purge(el);
      el.hidden = true; state.textContent = text; fig.dataset.state = kind;
    };
    if (!m.processed) { empty("not-processed", "Not processed yet: no CTF profile."); return; }
    const response = await fetch(`/api/movies/${seg(movie)}/ctf`);
    if (String(movie) !== document.body.dataset.movie) return; // another movie is shown now
    if (!response.ok) {
      const detail = (await response.json().catch(() => ({}))).detail || `error ${response.status}`;
      if (response.status === 404) empty("none", "No CTF profile yet.");
      else empty("unreadable", `CTF profile not shown: ${detail}`);
      return;
    }
    const p = await response.json();
    const trusted = p.status === "ok";
    const f = p.frequency_per_a, res = p.fit_resolution_a;
    const spacing = f.map((v) => (v > 0 ? 1 / v : null));
    const at = "%{x:.4f} 1/Å (%{customdata:.2f} Å)";
    const ticks = RINGS_A.filter((a) => 1 / a >= f[0] && 1 / a <= f[f.length - 1]);
    const look = layout(trusted ? "CTF profile" : `CTF profile: NOT TRUSTED (best guess, not used)${p.reason ? " — " + p.reason : ""}`,
      "Spatial frequency (1/Å); ticks as resolution", "Amplitude − background (a.u.)");
    Object.assign(look.xaxis, { tickvals: ticks.map((a) => 1 / a), ticktext: ticks.map((a) => `${a} Å`) });
    look.yaxis2 = { title: { text: "Local correlation (−1 to 1)" }, overlaying: "y", side: "right", range: [-1.05, 1.05],
      tickvals: [-1, -0.5, 0, 0.5, 1], showgrid: false, zeroline: false };
    look.margin.r = 64;
    look.legend = { orientation: "h", y: -0.28 };
    look.title.font.color = trusted ? "#111" : "#a40e0e";
    if (!trusted) look.plot_bgcolor = "#fdf0f0";
    if (res) {
      look.shapes = [{ type: "line", xref: "x", yref: "paper", x0: 1 / res, x1: 1 / res, y0: 0, y1: 1,
        line: { color: trusted ? "#0a6b2d" : "#a40e0e", width: 2, dash: "dash" } }];
      look.annotations = [{ xref: "x", yref: "paper", x: 1 / res, y: 1, yanchor: "bottom", showarrow: false,
        text: `fit resolution ${res.toFixed(2)} Å${trusted ? "" : " (not trusted)"}`,
        font: { color: trusted ? "#0a6b2d" : "#a40e0e", size: 12 } }];
    }
    const traces = [
      { x: f, y: p.data, customdata: spacing, type: "scatter", mode: "lines", name: "Data (rotational average)",
        line: { color: "#555", width: 1 }, hovertemplate: `${at}<br>data %{y:.3f} a.u.<extra></extra>` },
      { x: f, y: p.fit, customdata: spacing, type: "scatter", mode: "lines", name: trusted ? "Fitted CTF model" : "Best guess (not trusted)",
        line: { color: trusted ? "#0b4f9c" : "#a40e0e", width: 2, dash: trusted ? "solid" : "dot" },
        hovertemplate: `${at}<br>fit %{y:.3f} a.u.<extra></extra>` },
      { x: f, y: p.cc, customdata: spacing, yaxis: "y2", type: "scatter", mode: "lines", name: "Local correlation",
        line: { color: "#0a6b2d", width: 1, dash: "dot" }, hovertemplate: `${at}<br>correlation %{y:.2f}<extra></extra>` },
    ];
    el.hidden = false;
    state.textContent = trusted ? "" : "Not trusted:";
    charts.schedule(el, () => {
      Plotly.react(el, traces, look, CONFIG);
      fig.dataset.state = trusted ? "drawn" : "not-trusted";
      fig.dataset.resolution = res ? res.toFixed(2) : "";
    });
  }

  const cell = (text) => { const td = document.createElement("td"); td.textContent = text ?? ""; return td; };
  const when = (iso) => (iso ? `${iso.replace("T", " ").slice(0, 16)} UTC` : ""); // as the server writes times
  function jobs(rows) {
    const body = $("jobs-body");
    body.replaceChildren(...rows.map((j) => {
      const tr = document.createElement("tr");
      tr.dataset.program = j.auto_proc_program_id;
      const status = document.createElement("span");
      status.className = "badge " + j.status; status.textContent = j.status;
      const st = cell(""); st.append(status);
      const msg = cell([j.asked_for && `Asked for: ${j.asked_for}`, j.message, ...j.messages.map((m) => `${m[0]} ${m[1]}`)].filter(Boolean).join(" · "));
      const action = cell("");
      if (["requested", "running", "idle"].includes(j.status)) {
        const form = document.createElement("form");
        form.method = "post"; form.action = `/jobs/${seg(j.auto_proc_program_id)}/stop`;
        form.innerHTML = `<input type="hidden" name="csrf_token"><button type="submit">Stop</button>`;
        form.firstChild.value = csrf;
        action.append(form);
      }
      const num = cell(j.auto_proc_program_id); num.className = "num";
      tr.append(num, cell(j.display_name), st, msg, cell(when(j.start)), cell(when(j.end)), action);
      return tr;
    }));
  }

  const span = (s) => (s < 60 ? `${Math.round(s)} s` : s < 3600 ? `${Math.round(s / 60)} min`
    : s < 172800 ? `${Math.floor(Math.round(s / 60) / 60)} h ${Math.round(s / 60) % 60} min` : `${Math.round(s / 86400)} days`);
  function progress(p) {
    if (!p || !$("progress")) return;
    for (const st of p.stages) {
      const row = document.querySelector(`#progress tr[data-stage="${st.stage}"]`);
      if (row) { row.cells[1].textContent = st.done; row.cells[2].textContent = st.backlog; }
    }
    $("eta").textContent = p.eta_s !== null
      ? `${p.behind} movies behind; at ${Math.round(p.movies_per_hour)} movies/h, caught up in about ${span(p.eta_s)}.`
      : p.behind ? `${p.behind} movies behind; none processed in the last 15 minutes.` : "Nothing waiting.";
  }

  function summary(values) {
    progress(values.progress);
    if ($("selected-particles")) $("selected-particles").textContent = values.progress.selected_particles;
    for (const dd of document.querySelectorAll("#summary dd")) {
      const v = values[dd.dataset.key];
      const scale = Number(dd.dataset.scale || 1);
      if (v === null || v === undefined) dd.textContent = "–";
      else dd.textContent = dd.dataset.decimals ? (v * scale).toFixed(Number(dd.dataset.decimals)) : String(v);
    }
  }

  function live() {
    const source = new EventSource(`/api/collections/${seg(id)}/events`);
    source.addEventListener("open", () => { $("live-state").textContent = "Live: updates as results land."; });
    source.addEventListener("error", () => { $("live-state").textContent = "Live updates paused; retrying…"; });
    source.addEventListener("update", (event) => {
      const state = JSON.parse(event.data);
      $("live-state").dataset.updates = Number($("live-state").dataset.updates || 0) + 1;
      summary(state.summary);
      jobs(state.jobs);
      document.dispatchEvent(new CustomEvent("cryolive:classes", { detail: state.classes }));
      load(watermark());
    });
  }

  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowRight") { show(current + 1); event.preventDefault(); }
    if (event.key === "ArrowLeft") { show(current - 1); event.preventDefault(); }
  });
  // an image opens full size (its own pixels, up to the window) in a dialog; Esc or a click closes it
  const lightbox = $("lightbox");
  for (const img of document.querySelectorAll(".images img")) {
    img.tabIndex = 0;
    const open = () => {
      if (!img.getAttribute("src") || !lightbox.showModal) return;
      $("lightbox-img").src = img.src; $("lightbox-img").alt = img.alt + " (full size)";
      lightbox.showModal();
    };
    img.addEventListener("click", open);
    img.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { open(); e.preventDefault(); } });
  }
  $("lightbox-img").addEventListener("click", () => lightbox.close());
  lightbox.addEventListener("click", (e) => { if (e.target === lightbox) lightbox.close(); });
  $("prev").addEventListener("click", () => show(current - 1));
  $("next").addEventListener("click", () => show(current + 1));
  $("movie-index").addEventListener("change", (e) => show(Number(e.target.value) - 1));
  load(0).then(live);
})();
