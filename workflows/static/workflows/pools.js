// The pools page: refresh each pool's figures from the JSON API every few seconds (the forms stay as they are).
const table = document.getElementById("pools");

async function refresh() {
  try {
    const response = await fetch(table.dataset.apiUrl, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return;
    const { results } = await response.json();
    for (const pool of results) {
      const row = table.querySelector(`tr[data-pool="${CSS.escape(pool.name)}"]`);
      if (!row) continue;
      for (const cell of row.querySelectorAll("[data-field]")) {
        const name = cell.dataset.field;
        if (name === "paused") {
          cell.dataset.paused = String(pool.paused);
          cell.textContent = pool.paused ? "paused" : "running";
        } else if (pool[name] !== undefined && pool[name] !== null) {
          cell.textContent = String(pool[name]);
        }
      }
    }
  } catch {
    // offline for a moment: the next refresh tries again
  }
}

if (table) setInterval(refresh, 3000);
