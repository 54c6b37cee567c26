// The run page's vertical graph (shown instead of the wide one below 700 px, see phone.css). run.js keeps the wide
// graph live; this mirrors each of its nodes (status, selection, icons, progress) onto the vertical copy, and a tap
// on a vertical node selects the step as a click on the wide one would, then scrolls to the step's panel.
const wide = document.getElementById("run-graph");
const tall = document.getElementById("run-graph-vertical");
const panel = document.getElementById("step-panel");

if (wide && tall) {
  const key = (g) => `${g.dataset.block}:${g.dataset.step}`;
  const twins = new Map();
  for (const g of tall.querySelectorAll("g.node")) twins.set(key(g), g);

  const mirror = (g) => {
    const twin = twins.get(key(g));
    if (!twin) return;
    twin.setAttribute("class", g.getAttribute("class") || "");
    for (const name of ["data-status", "data-progress", "aria-label"]) {
      const value = g.getAttribute(name);
      if (value === null) twin.removeAttribute(name);
      else if (twin.getAttribute(name) !== value) twin.setAttribute(name, value);
    }
    if (twin.innerHTML !== g.innerHTML) twin.innerHTML = g.innerHTML;
  };
  new MutationObserver((records) => {
    const changed = new Set();
    for (const r of records) {
      const g = (r.target.nodeType === Node.ELEMENT_NODE ? r.target : r.target.parentElement)?.closest("g.node");
      if (g) changed.add(g);
    }
    changed.forEach(mirror);
  }).observe(wide, { subtree: true, attributes: true, childList: true, characterData: true });
  wide.querySelectorAll("g.node").forEach(mirror);

  const choose = (twin) => {
    const g = wide.querySelector(`g.node[data-block="${CSS.escape(twin.dataset.block)}"][data-step="${CSS.escape(twin.dataset.step)}"]`);
    if (!g) return;
    g.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    panel?.scrollIntoView({ behavior: "smooth", block: "start" });
  };
  tall.addEventListener("click", (event) => {
    const twin = event.target.closest("g.node");
    if (twin) choose(twin);
  });
  tall.addEventListener("keydown", (event) => {
    const twin = event.target.closest("g.node");
    if (twin && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      choose(twin);
    }
  });
}
