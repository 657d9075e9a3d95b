// The playground: controls built from GET /api/v1/models, the price from POST /api/v1/quote, the job submitted to
// POST /api/v1/models/grok-imagine and followed over GET /api/v1/jobs/{id}/events: the API's own routes, called
// with the member's session, so the page applies no rule of its own.
"use strict";
(() => {
  const gg = window.grokgate;
  const form = document.getElementById("playground");
  const select = document.getElementById("model");
  const fieldsBox = document.getElementById("fields");
  const price = document.getElementById("price");
  const formError = document.getElementById("form-error");
  const result = document.getElementById("result");
  const statusLine = document.getElementById("status");
  const media = document.getElementById("media");
  const downloads = document.getElementById("downloads");
  const cancelButton = document.getElementById("cancel");
  const details = document.getElementById("details");
  const prefill = JSON.parse(form.dataset.prefill || "{}");
  const LABELS = {
    prompt: "Prompt", aspect_ratio: "Aspect ratio", duration: "Duration (seconds)", resolution: "Resolution",
    quality: "Quality", n: "Number of images", image_url: "Source image URL", image_urls: "Source image URLs (one per line)",
    video_url: "Source video URL",
  };
  let models = [];
  let uploads = {};
  let quoteTimer = null;
  let stream = null;
  let currentJob = null;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function control(name, rule, value) {
    const id = `f-${name}`;
    const wrap = el("div", { class: "field" });
    const label = el("label", { for: id }, LABELS[name] || name);
    if (rule.required) label.appendChild(el("small", {}, " (required)"));
    wrap.appendChild(label);
    let input;
    if (name === "prompt") {
      input = el("textarea", { id, name, required: rule.required, maxlength: 5000 });
      input.value = value || "";
    } else if (rule.values) {
      input = el("select", { id, name });
      if (!rule.required && rule.default === undefined) input.appendChild(el("option", { value: "" }, "default"));
      for (const choice of rule.values) input.appendChild(el("option", { value: choice }, choice));
      input.value = value !== undefined ? String(value) : (rule.default !== undefined ? String(rule.default) : "");
    } else if (name === "duration" || name === "n") {
      input = el("input", { id, name, type: "number", min: rule.min, max: rule.max, step: 1, inputmode: "numeric" });
      input.value = value !== undefined ? String(value) : (rule.default !== undefined ? String(rule.default) : "");
    } else if (name === "image_urls") {
      input = el("textarea", { id, name, rows: 2 });
      input.value = Array.isArray(value) ? value.join("\n") : "";
    } else {
      input = el("input", { id, name, type: "url", required: rule.required });
      input.value = value || "";
    }
    wrap.appendChild(input);
    if (name === "image_url" || name === "image_urls") {
      const fileId = `${id}-file`;
      wrap.appendChild(el("label", { for: fileId, class: "check" }, name === "image_url" ? "or upload an image" : "or upload images"));
      const file = el("input", { id: fileId, type: "file", accept: "image/png,image/jpeg,image/webp", multiple: name === "image_urls" });
      file.addEventListener("change", async () => {
        const read = await Promise.all([...file.files].map((one) => new Promise((resolve, reject) => {
          const reader = new FileReader();
          reader.onload = () => resolve(reader.result);
          reader.onerror = () => reject(reader.error);
          reader.readAsDataURL(one);
        })));
        uploads[name] = read.length ? read : undefined;
        scheduleQuote();
      });
      wrap.appendChild(file);
    }
    return wrap;
  }

  function entry() { return models.find((m) => m.id === select.value); }

  function renderFields(values) {
    const chosen = entry();
    uploads = {};
    fieldsBox.textContent = "";
    document.getElementById("model-description").textContent = chosen ? chosen.description : "";
    if (!chosen) return;
    for (const [name, rule] of Object.entries(chosen.fields)) fieldsBox.appendChild(control(name, rule, values[name]));
    scheduleQuote();
  }

  function body() {
    const chosen = entry();
    const data = { model: chosen.id };
    for (const name of Object.keys(chosen.fields)) {
      const input = document.getElementById(`f-${name}`);
      if (uploads[name]) {
        data[name] = name === "image_urls" ? uploads[name] : uploads[name][0];
        continue;
      }
      const raw = input.value.trim();
      if (!raw) continue;
      if (name === "duration" || name === "n") data[name] = Number(raw);
      else if (name === "image_urls") data[name] = raw.split(/\s+/).filter(Boolean);
      else data[name] = name === "prompt" ? input.value : raw;
    }
    return data;
  }

  function scheduleQuote() {
    clearTimeout(quoteTimer);
    quoteTimer = setTimeout(quote, 200);
  }

  async function quote() {
    if (!entry()) return;
    const answer = await gg.api("POST", "/api/v1/quote", body());
    if (answer.ok) {
      price.textContent = `Price: ${answer.data.creditsCharged} credits (balance ${answer.data.creditsRemaining})`;
      price.dataset.credits = answer.data.creditsCharged;
    } else {
      price.textContent = `Price: — ${answer.data ? answer.data.error : "unavailable"}`;
      delete price.dataset.credits;
    }
  }

  function idempotencyKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `pg-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  }

  function link(href, text) { return el("a", { class: "button", href, download: "" }, text); }

  function show(jobId, status, output, error) {
    result.hidden = false;
    statusLine.textContent = error ? `${status}: ${error.code} ${error.message}` : `Status: ${status}`;
    statusLine.dataset.status = status;
    details.hidden = !jobId;
    if (jobId) details.href = `/history/${jobId}`;
    cancelButton.hidden = !(status === "pending" || status === "processing");
    media.textContent = "";
    downloads.textContent = "";
    if (!output) return;
    if (output.videoUrl) {
      const video = el("video", { id: "result-video", controls: true, preload: "metadata", poster: output.thumbnailUrl, src: output.videoUrl });
      media.appendChild(video);
      downloads.appendChild(link(output.videoUrl, "Download video"));
      if (output.thumbnailUrl) downloads.appendChild(link(output.thumbnailUrl, "Download poster"));
    } else if (output.resultUrls || output.imageUrl) {
      (output.resultUrls || [output.imageUrl]).forEach((url, i) => {
        media.appendChild(el("img", { src: url, alt: `Generated image ${i + 1}`, class: "result-image" }));
        downloads.appendChild(link(url, `Download image ${i + 1}`));
      });
    }
  }

  function follow(jobId) {
    if (stream) stream.close();
    stream = new EventSource(`/api/v1/jobs/${encodeURIComponent(jobId)}/events`);
    stream.addEventListener("status", (event) => {
      const job = JSON.parse(event.data);
      show(job.id, job.status, job.output, job.error);
      if (["completed", "failed", "cancelled"].includes(job.status)) { stream.close(); stream = null; quote(); }
    });
    stream.onerror = () => { if (stream && stream.readyState === EventSource.CLOSED) stream = null; };
  }

  async function submit(event) {
    event.preventDefault();
    formError.hidden = true;
    const button = document.getElementById("generate");
    button.disabled = true;
    statusLine.textContent = "Submitting…";
    result.hidden = false;
    try {
      const answer = await gg.api("POST", "/api/v1/models/grok-imagine", body(), { "Idempotency-Key": idempotencyKey() });
      if (!answer.ok) {
        formError.textContent = answer.data ? `${answer.data.error} (${answer.data.code})` : `Error ${answer.status}`;
        formError.hidden = false;
        result.hidden = true;
        return;
      }
      currentJob = answer.data.jobId;
      if (answer.status === 200 && answer.data.status === "completed") {
        show(currentJob, "completed", answer.data.output || answer.data, null);
        quote();
      } else {
        show(currentJob, answer.data.status, null, null);
        follow(currentJob);
      }
    } finally {
      button.disabled = false;
    }
  }

  cancelButton.addEventListener("click", async () => {
    if (!currentJob) return;
    const answer = await gg.api("DELETE", `/api/v1/jobs/${encodeURIComponent(currentJob)}`);
    if (answer.ok) show(answer.data.id, answer.data.status, answer.data.output, answer.data.error);
  });
  select.addEventListener("change", () => renderFields({}));
  form.addEventListener("input", scheduleQuote);
  form.addEventListener("submit", submit);

  (async () => {
    const answer = await gg.api("GET", "/api/v1/models");
    if (!answer.ok) { formError.textContent = "Could not load the sub-models"; formError.hidden = false; return; }
    models = answer.data.data;
    for (const m of models) select.appendChild(el("option", { value: m.id }, `${m.id} (${m.kind})`));
    const start = models.some((m) => m.id === prefill.model) ? prefill.model : (models.some((m) => m.id === "text-to-image") ? "text-to-image" : models[0].id);
    select.value = start;
    renderFields(prefill);
    form.dataset.ready = "true";
  })();
})();
