// A job's webhook deliveries, read from GET /api/v1/jobs/{id}/deliveries with the member's session.
"use strict";
(async () => {
  const box = document.getElementById("deliveries");
  const answer = await window.grokgate.api("GET", `/api/v1/jobs/${encodeURIComponent(box.dataset.job)}/deliveries`);
  box.textContent = "";
  if (!answer.ok) { box.textContent = (answer.data && answer.data.error) || "Could not load deliveries"; return; }
  if (!answer.data.deliveries.length) { box.textContent = "No deliveries yet."; return; }
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>Event</th><th>URL</th><th>Status</th><th>Attempts</th><th>Last answer</th></tr></thead>";
  const body = table.appendChild(document.createElement("tbody"));
  for (const row of answer.data.deliveries) {
    const tr = body.appendChild(document.createElement("tr"));
    for (const value of [row.event, row.url, row.status, row.attempts, row.lastStatusCode || row.lastError || ""]) {
      tr.appendChild(document.createElement("td")).textContent = String(value);
    }
  }
  box.appendChild(table);
})();
