// What every console page shares: the session's CSRF token for the API calls, and copy buttons.
"use strict";
window.grokgate = {
  csrf: document.body.dataset.csrf,
  // Calls one of the API's own routes with the member's session cookie (and the CSRF token when it changes something).
  async api(method, path, body, headers) {
    const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": this.csrf, ...(headers || {}) } };
    if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, ok: response.ok, data };
  },
};
document.querySelectorAll("[data-copy]").forEach((button) => {
  button.addEventListener("click", async () => {
    const field = document.querySelector(button.dataset.copy);
    field.select();
    try { await navigator.clipboard.writeText(field.value); } catch (e) { document.execCommand("copy"); }
    button.textContent = "Copied";
  });
});
