// When the collection page's charts are drawn (issue #24: the page usable fast, from a cold
// cache). Loaded first, before plotly.min.js, so that the page's own scripts ask for their data
// while plotly is still downloading and being parsed; `ready` says when Plotly is there.
// A chart on the screen or within one screen below it is drawn at once; one further away is
// drawn when it comes near or, failing that, when the browser is idle (one chart per idle
// moment, so scrolling stays smooth): every chart is drawn in the end, the first screen first.
// The page loads plotly.js's partial (cartesian) bundle when the server has it; full() fetches
// the full one (isosurface, scattergl) only when a chart needs it.
"use strict";
window.cryoliveCharts = (() => {
  const fullUrl = document.currentScript && document.currentScript.dataset.full;
  let fullPlotly = null;
  // Deferred scripts run in order, then DOMContentLoaded fires: plotly.min.js comes last.
  const ready = new Promise((resolve) => {
    if (window.Plotly || document.readyState === "complete") resolve();
    else document.addEventListener("DOMContentLoaded", () => resolve(), { once: true });
  });
  const pending = new Map(); // element -> its latest drawing, not done yet
  const waiting = []; // resolve functions of settled()
  let idleAsked = false, flushAsked = false;

  function near(el) {
    // on the screen or within one screen height below or above it; a hidden chart is not
    if (!el.getClientRects().length) return false;
    const box = el.getBoundingClientRect(), h = window.innerHeight || 800;
    return box.bottom > -h && box.top < 2 * h;
  }

  function run(el) {
    const draw = pending.get(el);
    if (!draw) return;
    pending.delete(el);
    if (window.Plotly) draw();
    if (!pending.size) waiting.splice(0).forEach((resolve) => resolve());
  }

  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) run(entry.target);
    }, { rootMargin: "100% 0px 100% 0px" })
    : null;

  function idle(deadline) {
    idleAsked = false;
    // the next chart in page order (a chart needs about 20-150 ms: one per idle moment unless
    // the moment is long)
    do {
      const next = pending.keys().next();
      if (next.done) return;
      run(next.value);
    } while (deadline.timeRemaining() > 40);
    askIdle();
  }

  function askIdle() {
    if (idleAsked || !pending.size) return;
    idleAsked = true;
    if (window.requestIdleCallback) requestIdleCallback(idle, { timeout: 1000 });
    else setTimeout(() => idle({ timeRemaining: () => 0 }), 50);
  }

  // Draw `draw` (a function that calls Plotly for `el`) at the next flush() if `el` is near
  // the screen then, else later; a newer drawing of the same element replaces one waiting.
  function schedule(el, draw) {
    pending.delete(el); // keep page order: a redrawn chart goes to the back of the queue
    pending.set(el, draw);
    if (!flushAsked) { flushAsked = true; queueMicrotask(flush); }
  }

  // Draw the charts waiting that are near the screen now. Where they are is measured for all
  // of them first, in one layout: measuring after each drawing would lay the page out again
  // every time (about 80 ms each on the collection page).
  function flush() {
    flushAsked = false;
    const waiting = [...pending.keys()];
    const now = waiting.filter(near);
    for (const el of now) run(el);
    for (const el of waiting) if (observer && !now.includes(el)) observer.observe(el);
    askIdle();
  }

  // Resolves to the full plotly.js (every trace type), fetched once, when first asked for.
  // Where the page's own bundle is the full one (the server has no partial bundle) that is it.
  // The full bundle sets window.Plotly as it runs; the page's Plotly is put back at once (the
  // load event fires in the same task, before any other script of the page runs), so that
  // the charts it drew are redrawn by the same instance.
  let fullAsked = null;
  function full() {
    if (fullAsked) return fullAsked;
    fullAsked = ready.then(() => {
      const page = [...document.scripts].some((s) => s.src.endsWith(fullUrl));
      if (page || !fullUrl) return (fullPlotly = window.Plotly);
      return new Promise((resolve, reject) => {
        const own = window.Plotly, script = document.createElement("script");
        script.src = fullUrl;
        script.onload = () => { fullPlotly = window.Plotly; window.Plotly = own; resolve(fullPlotly); };
        script.onerror = () => { fullAsked = null; reject(new Error(`${fullUrl}: not loaded`)); };
        document.head.append(script);
      });
    });
    return fullAsked;
  }

  // The Plotly that draws `el`: the full one (after full()) where `needFull`, else the page's.
  // A chart that changes hands (a collection passing 5,000 movies turns to scattergl) is
  // cleared by the instance that drew it first.
  function plotly(el, needFull) {
    const lib = needFull && fullPlotly ? fullPlotly : window.Plotly;
    if (el.cryolivePlotly && el.cryolivePlotly !== lib) {
      el.cryolivePlotly.purge(el);
      delete el.dataset.bound;
    }
    el.cryolivePlotly = lib;
    return lib;
  }

  // Resolves once no chart waits to be drawn.
  const settled = () => (pending.size ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve());

  const hasFull = () => fullPlotly !== null;
  return { ready, schedule, flush, settled, full, hasFull, plotly };
})();
