// The 2D class gallery: sort each batch's classes by particles (most first) or resolution
// (best first; classes without one last). Buttons, so the keyboard works as the mouse does.
"use strict";
(() => {
  const buttons = [...document.querySelectorAll(".sort-controls button[data-sort]")];
  if (!buttons.length) return;
  const value = (li, key) => {
    const v = li.dataset[key];
    if (v === "") return null;
    return Number(v);
  };
  function sort(key) {
    for (const list of document.querySelectorAll("ol.gallery")) {
      const items = [...list.children];
      items.sort((a, b) => {
        const x = value(a, key), y = value(b, key);
        if (x === null || y === null) return (x === null) - (y === null);
        return key === "particles" ? y - x : x - y;
      });
      list.append(...items);
    }
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.sort === key));
    document.body.dataset.classSort = key;
  }
  for (const b of buttons) b.addEventListener("click", () => sort(b.dataset.sort));
})();
