// Front end of cloaca_nb's DagWidget: shows the SVG drawn in Python (graphviz `dot` or the
// pure-Python fallback) and recolours nodes live from the `nodes` trait, with a progress bar.
function render({ model, el }) {
  const root = document.createElement("div");
  root.style.fontFamily = "Helvetica, Arial, sans-serif";
  const bar = document.createElement("div");
  const progress = document.createElement("progress");
  progress.style.width = "240px";
  const label = document.createElement("span");
  label.style.marginLeft = "8px";
  bar.append(progress, label);
  const drawing = document.createElement("div");
  drawing.style.overflow = "auto";
  root.append(bar, drawing);
  el.append(root);

  function paint() {
    const nodes = model.get("nodes") || {};
    for (const [id, st] of Object.entries(nodes)) {
      const g = drawing.querySelector(`g[id="task-${id}"]`);
      if (!g) continue;
      const shape = g.querySelector("path, polygon, rect, ellipse");
      if (shape) shape.setAttribute("fill", st.colour);
      const texts = g.querySelectorAll("text");
      if (texts.length) texts[texts.length - 1].textContent = st.line;
      const title = g.querySelector("title");
      if (title && st.error) title.textContent = st.error;
    }
    const total = model.get("total");
    const done = model.get("done");
    bar.style.display = total ? "" : "none";
    progress.max = total || 1;
    progress.value = done;
    label.textContent = `${done}/${total} tasks` + (model.get("run_status") ? ` · ${model.get("run_status")}` : "");
  }
  function draw() {
    drawing.innerHTML = model.get("svg");
    paint();
  }
  model.on("change:svg", draw);
  model.on("change:nodes", paint);
  model.on("change:done", paint);
  model.on("change:total", paint);
  model.on("change:run_status", paint);
  draw();
}
export default { render };
