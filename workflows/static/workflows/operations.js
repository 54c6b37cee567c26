// The operations page: fetch its live sections (rendered by the server, ?part=live) every few seconds and swap
// them in. The pools' table, with its forms, is refreshed by pools.js.
const live = document.getElementById("ops-live");

async function refresh() {
  try {
    const response = await fetch(live.dataset.url, { credentials: "same-origin", cache: "no-store" });
    if (response.ok) live.innerHTML = await response.text();
  } catch {
    // offline for a moment: the next refresh tries again
  }
}

if (live) setInterval(refresh, 3000);
