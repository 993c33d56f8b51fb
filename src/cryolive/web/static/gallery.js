// The 2D class gallery: sort each batch's classes by particles (most first) or resolution
// (best first; classes without one last). Buttons, so the keyboard works as the mouse does.
// Live: collection.js passes each pushed update's batches ("cryolive:classes" event); when
// they differ from those shown, the gallery is rebuilt in the server's markup and re-sorted.
// A click on a class selects or deselects it (POST /api/classes/{id}/choice), over the 2D
// engine's automatic selection; "↺ automatic" gives it back. The gallery is then re-read.
"use strict";
(() => {
  const box = document.getElementById("gallery");
  if (!box) return;
  const controls = document.querySelector("#classes .sort-controls");
  const buttons = [...controls.querySelectorAll("button[data-sort]")];
  let key = "particles", shown = null;
  const showEmpty = document.getElementById("show-empty");
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  function empties() { // classes without particles are hidden unless asked for
    for (const li of box.querySelectorAll("li[data-empty]")) li.hidden = !showEmpty.checked;
  }
  const value = (li, k) => {
    const v = li.dataset[k];
    if (v === "") return null;
    return Number(v);
  };
  function sort(k) {
    key = k;
    for (const list of box.querySelectorAll("ol.gallery")) {
      const items = [...list.children];
      items.sort((a, b) => {
        const x = value(a, k), y = value(b, k);
        if (x === null || y === null) return (x === null) - (y === null);
        return k === "particles" ? y - x : x - y;
      });
      list.append(...items);
    }
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.sort === k));
    document.body.dataset.classSort = k;
  }

  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  };
  const me = box.dataset.me;
  const root = document.getElementById("collection");
  function card(c) {
    const chosen = c.chosen_by !== null && c.chosen_by !== undefined;
    const li = el("li", { className: "class-card" + (c.selected ? " selected" : " deselected") + (chosen ? " chosen" : "") });
    Object.assign(li.dataset, { particles: c.particles, class: c.class_number,
      resolution: c.resolution_a === null ? "" : c.resolution_a, id: c.particle_classification_id });
    if (!c.particles) li.dataset.empty = "";
    const button = el("button", { type: "button", className: "choose",
      title: `${c.selected ? "Click to deselect" : "Click to select"} this class` });
    button.setAttribute("aria-pressed", String(c.selected));
    button.setAttribute("aria-label", `Class ${c.class_number}`);
    if (c.has_image) {
      button.append(el("img", { src: `/api/classes/${encodeURIComponent(String(c.particle_classification_id))}/image`,
        alt: `Class ${c.class_number} average`, loading: "lazy", width: 128, height: 128 }));
    }
    const meta = el("span", { className: "class-meta" }, `#${c.class_number}`);
    if (chosen) {
      meta.append(" ", el("span", { className: "mark-chosen" },
        `${c.selected ? "✓ chosen" : "✗ deselected"} by ${c.chosen_by === me ? "you" : c.chosen_by}`));
    } else if (c.selected) {
      meta.append(" ", el("span", { className: "mark-selected", title: "selected by the 2D engine's score" }, "★ auto",
        el("span", { className: "sr" }, " selected")));
    }
    const resolution = c.resolution_a === null ? "– Å" : `${c.resolution_a.toFixed(1)} Å`;
    meta.append(el("br"), plural(c.particles, "particle", "particles"), el("br"), resolution);
    button.append(meta);
    li.append(button);
    if (chosen) {
      const auto = el("button", { type: "button", className: "auto",
        title: `Give this class back to the automatic selection (${c.auto_selected ? "selected" : "not selected"})` }, "↺ automatic");
      auto.setAttribute("aria-label", `Class ${c.class_number}: automatic selection`);
      li.append(auto);
    }
    return li;
  }
  // when the classification ran ("2026-12-06 19:38 UTC", as the server writes it) and how long
  const ran = (b) => {
    if (!b.started_at) return "";
    const at = `${b.started_at.slice(0, 10)} ${b.started_at.slice(11, 16)} UTC`;
    const s = Math.round(b.duration_s ?? -1);
    const took = s < 0 ? "" : s < 60 ? `, took ${s} s` : s < 3600 ? `, took ${Math.round(s / 60)} min`
      : `, took ${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
    return ` · ran ${at}${took}`;
  };
  function render(batches) {
    const text = JSON.stringify(batches);
    if (text === shown) return;
    const first = shown === null;
    shown = text;
    const served = [...box.querySelectorAll("ol.gallery")].map((ol) => ol.dataset.group).join();
    if (first && served === batches.map((b) => b.group_id).join()) return; // as the page has it
    const parts = batches.flatMap((b) => {
      const pixel = (b.binned_pixel_size_a ? ` · ${b.binned_pixel_size_a.toFixed(2)} Å/px` : "") + ran(b);
      const title = el("h3", {}, `Batch ${b.batch_number} `,
        el("small", {}, `${plural(b.particles, "particle", "particles")} · ${plural(b.classes_in_batch, "class", "classes")}${pixel}`));
      const list = el("ol", { className: "gallery" }, ...b.classes.map(card));
      Object.assign(list.dataset, { batch: b.batch_number, group: b.group_id });
      return [title, list];
    });
    box.replaceChildren(...(parts.length ? parts : [el("p", {}, "No 2D classification yet.")]));
    controls.hidden = !batches.length;
    empties();
    sort(key);
    box.dataset.updates = Number(box.dataset.updates || 0) + 1;
  }
  const problem = document.getElementById("choice-error");
  async function choose(li, selected) {
    problem.textContent = "";
    const url = `/api/classes/${encodeURIComponent(li.dataset.id)}/choice`;
    try {
      const answer = await fetch(url, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
        body: JSON.stringify({ selected }) });
      if (!answer.ok) {
        const body = await answer.json().catch(() => ({}));
        throw new Error(typeof body.detail === "string" ? body.detail : `error ${answer.status}`);
      }
      const collection = encodeURIComponent(root.dataset.id);
      const [batches, detail] = await Promise.all([
        fetch(`/api/collections/${collection}/classes`, { credentials: "same-origin" }).then((r) => r.json()),
        fetch(`/api/collections/${collection}`, { credentials: "same-origin" }).then((r) => r.json()),
      ]);
      shown = ""; // rebuild even when the page's markup had the same groups
      render(batches);
      document.getElementById("selected-particles").textContent = detail.summary.progress.selected_particles;
      box.dataset.choices = Number(box.dataset.choices || 0) + 1;
    } catch (error) {
      problem.textContent = `Your choice was not saved: ${error.message}`;
    }
  }
  box.addEventListener("click", (event) => {
    const target = event.target.closest("button");
    const li = target && target.closest("li.class-card");
    if (!li) return;
    if (target.classList.contains("auto")) choose(li, null);
    else if (target.classList.contains("choose")) choose(li, target.getAttribute("aria-pressed") !== "true");
  });
  for (const b of buttons) b.addEventListener("click", () => sort(b.dataset.sort));
  showEmpty.addEventListener("change", empties);
  document.addEventListener("cryolive:classes", (event) => render(event.detail));
})();
