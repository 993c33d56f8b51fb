// The atlas and grid-square pages: squares (or foil holes) drawn over the image, coloured by
// the measure the user picks; a square opens its page, a hole lists its movies.
"use strict";
(() => {
  const root = document.getElementById("grid-view");
  if (!root) return;
  const $ = (sel) => document.getElementById(sel);
  const seg = (value) => encodeURIComponent(String(value));
  const SVG = "http://www.w3.org/2000/svg";
  const NO_VALUE = "#9e9e9e";
  // viridis, sampled: low values dark blue, high values yellow
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const hole = root.dataset.kind === "hole";
  let items = [];

  function colour(t) {
    const x = Math.max(0, Math.min(1, t)) * (STOPS.length - 1), i = Math.min(Math.floor(x), STOPS.length - 2);
    const f = x - i, c = STOPS[i].map((v, k) => Math.round(v + f * (STOPS[i + 1][k] - v)));
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  }

  function fmt(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(Number.isInteger(v) ? 0 : 2); }

  function paint() {
    const measure = $("measure").value;
    const values = items.map((it) => it.stats[measure]).filter((v) => v !== null && v !== undefined);
    const low = Math.min(...values), high = Math.max(...values);
    for (const it of items) {
      const v = it.stats[measure];
      const fill = v === null || v === undefined ? NO_VALUE : colour(high > low ? (v - low) / (high - low) : 0.5);
      it.shape.setAttribute("fill", fill);
      it.shape.dataset.value = v === null || v === undefined ? "" : String(v);
      it.title.textContent = `${hole ? "Foil hole" : "Grid square"} ${it.label}: ${fmt(v)} (${it.stats.movies} movies)`;
    }
    $("legend").textContent = values.length ? `${fmt(low)} (dark) … ${fmt(high)} (yellow); grey: no value` : "no values yet";
    document.body.dataset.measure = measure;
  }

  async function holeMovies(it) {
    $("hole-info").textContent = `Foil hole ${it.label}: ${it.stats.movies} movies`;
    const list = $("hole-movies");
    list.replaceChildren();
    const response = await fetch(`/api/foil-holes/${seg(it.id)}/movies`);
    if (!response.ok) { $("hole-info").textContent = `Foil hole ${it.label}: ${response.status}`; return; }
    for (const m of await response.json()) {
      const li = document.createElement("li"), a = document.createElement("a");
      a.href = `/collections/${seg(m.data_collection_id)}#movie=${seg(m.movie_id)}`;
      a.textContent = m.path.split("/").pop();
      li.append(a, ` · resolution ${fmt(m.resolution_a)} Å · motion ${fmt(m.total_motion_a)} Å`);
      list.append(li);
    }
    document.body.dataset.hole = String(it.id);
  }

  function draw(detail, image) {
    const width = detail.frame_width_px || image.naturalWidth || 1000;
    const height = detail.frame_height_px || image.naturalHeight || 1000;
    const svg = $("grid-overlay");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const list = hole ? detail.holes : detail.squares;
    items = [];
    for (const p of list) {
      if (p.x_px === null || p.y_px === null) continue; // placed nowhere yet
      let shape;
      if (hole) {
        shape = document.createElementNS(SVG, "circle");
        shape.setAttribute("cx", p.x_px); shape.setAttribute("cy", p.y_px);
        shape.setAttribute("r", (p.diameter_px || width / 60) / 2);
      } else {
        const w = p.width_px || width / 40, h = p.height_px || height / 40;
        shape = document.createElementNS(SVG, "rect");
        shape.setAttribute("x", p.x_px - w / 2); shape.setAttribute("y", p.y_px - h / 2);
        shape.setAttribute("width", w); shape.setAttribute("height", h);
        if (p.angle_deg) shape.setAttribute("transform", `rotate(${p.angle_deg} ${p.x_px} ${p.y_px})`);
      }
      const id = hole ? p.foil_hole_id : p.grid_square_id;
      const title = document.createElementNS(SVG, "title");
      shape.append(title);
      shape.classList.add("spot");
      shape.dataset.id = String(id);
      shape.setAttribute("tabindex", "0");
      const it = { id, label: p.label, stats: p.stats, shape, title };
      const open = () => { if (hole) holeMovies(it); else location.href = `/grid-squares/${seg(id)}`; };
      shape.addEventListener("click", open);
      shape.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
      svg.append(shape);
      items.push(it);
    }
    paint();
    document.body.dataset.grid = "drawn";
  }

  async function start() {
    const response = await fetch(root.dataset.api);
    if (!response.ok) return;
    const detail = await response.json();
    const image = $("grid-image");
    if (detail.has_image) {
      image.addEventListener("load", () => draw(detail, image), { once: true });
      image.addEventListener("error", () => draw(detail, image), { once: true });
      image.src = root.dataset.image;
    } else {
      image.remove();
      draw(detail, image);
    }
  }

  $("measure").addEventListener("change", paint);
  start();
})();
