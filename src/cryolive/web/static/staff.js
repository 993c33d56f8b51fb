// The staff area's throughput charts: movies per hour per data collection, and summed per
// microscope, from the data the page carries.
"use strict";
(() => {
  const source = document.getElementById("throughput-data");
  if (!source || !window.Plotly) return;
  const data = JSON.parse(source.textContent);
  const layout = (title) => ({ title: { text: title, font: { size: 14 } }, barmode: "stack",
    margin: { l: 60, r: 10, t: 36, b: 60 }, yaxis: { title: { text: "Movies per hour" } },
    xaxis: { title: { text: "Hour (UTC)" } }, font: { size: 12 }, showlegend: true, legend: { orientation: "h", y: -0.3 } });
  const options = { responsive: true, displaylogo: false };
  const traces = data.collections.map((c) => ({ x: c.hours, y: c.movies, type: "bar",
    name: `${c.visit} ${c.name} (${c.microscope || "no microscope"})`,
    hovertemplate: `${c.visit} ${c.name}<br>%{x|%Y-%m-%d %H:00} UTC<br>%{y} movies<extra></extra>` }));
  Plotly.react("throughput-chart", traces, layout("Per data collection"), options);
  const perScope = new Map();
  for (const c of data.collections) {
    const name = c.microscope || "(no microscope)";
    const sum = perScope.get(name) || { x: c.hours, y: c.movies.map(() => 0) };
    c.movies.forEach((n, i) => { sum.y[i] += n; });
    perScope.set(name, sum);
  }
  Plotly.react("throughput-microscopes", [...perScope].map(([name, s]) => ({ ...s, type: "bar", name,
    hovertemplate: `${name}<br>%{x|%Y-%m-%d %H:00} UTC<br>%{y} movies<extra></extra>` })),
    layout("Per microscope"), options);
  document.body.dataset.throughput = "drawn";
})();
