/* avserve web page. Plain JavaScript, no dependencies: it calls the same public API as every
 * other client (POST /v1/classify, /v1/jobs, GET /v1/models) and draws the answer. */
"use strict";

const KEY_STORE = "avserve.apiKey";
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

// What a person can do about each typed error (the API's message is always shown too).
const HINTS = {
  unauthorized: "This server needs an API key: type it in the field at the top of the page.",
  invalid_request: "The server did not accept the request as sent; check the options.",
  model_not_found: "No model of that name is loaded; pick one from the list.",
  unsupported_container: "The file is not a container the server can read (is it a video?).",
  unsupported_codec: "The video uses a codec the server cannot decode.",
  no_video_stream: "The file has no video stream (audio-only or not a video).",
  undecodable: "No frame of the file could be decoded: it is damaged or not a video.",
  empty_file: "The file is empty.",
  too_large: "The file is larger than this server accepts.",
  too_long: "The video is longer than this server accepts.",
  timeout: "Decoding or downloading the video took too long.",
  body_timeout: "The upload arrived too slowly; try again on a faster connection.",
  url_invalid: "That is not an http(s) URL the server can fetch.",
  url_forbidden: "The server refuses to fetch that address (private, or not on its allow-list).",
  url_unreachable: "The server could not download the video from that URL.",
  overloaded: "The server is busy; try again in a few seconds.",
  queue_full: "The job queue is full; try again later.",
  quota_exceeded: "Your API key has too many unfinished videos queued; wait for them to finish.",
  insufficient_storage: "The server has no temporary disk space left; try again later.",
  deadline_exceeded: "The request ran out of time on the server.",
  shutting_down: "The server is shutting down.",
  not_ready: "The server is not ready yet (still loading the model).",
  queue_unavailable: "The job queue store is unavailable.",
  job_not_found: "That job is unknown or has expired.",
  conflict: "The job already ended.",
  internal: "The server hit an internal error.",
};

const REASONS = {
  no_event_found: "no event found: the background outcome won",
  out_of_distribution: "no known class fits well enough",
  missing_modality: "the best class needs sound this video lacks",
};

// ---------------------------------------------------------------- API access ----------------
function apiKey() {
  return ($("api-key").value || "").trim();
}

function authHeaders() {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

class ApiError extends Error {
  constructor(status, code, message, requestId, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

function errorFromBody(status, text, headerRid, retryAfter) {
  let err = null;
  try {
    err = JSON.parse(text).error;
  } catch (_) {
    err = null;
  }
  if (err && err.code) {
    return new ApiError(status, err.code, err.message || "", err.request_id || headerRid, retryAfter);
  }
  return new ApiError(status, "http_" + status, text.slice(0, 300) || "HTTP " + status, headerRid, retryAfter);
}

async function api(method, path, body) {
  const headers = authHeaders();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", "could not reach the server (" + e.message + ")", null, null);
  }
  const text = await resp.text();
  if (!resp.ok) {
    throw errorFromBody(resp.status, text, resp.headers.get("x-request-id"), resp.headers.get("retry-after"));
  }
  return text ? JSON.parse(text) : null;
}

function showError(box, err) {
  box.replaceChildren();
  const title = document.createElement("p");
  const strong = document.createElement("strong");
  strong.className = "error-code";
  strong.textContent = err.code || "error";
  title.append(strong, ": " + (err.message || String(err)));
  box.append(title);
  const hint = HINTS[err.code] || (err.code === "network" ? "Is the server running?" : "");
  if (hint) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = hint + (err.retryAfter ? " (retry after " + err.retryAfter + " s)" : "");
    box.append(p);
  }
  if (err.requestId || err.status) {
    const p = document.createElement("p");
    p.className = "muted small";
    p.textContent = [err.status ? "HTTP " + err.status : "", err.requestId ? "request id " + err.requestId : ""]
      .filter(Boolean).join(", ");
    box.append(p);
  }
  box.hidden = false;
}

// ---------------------------------------------------------------- helpers -------------------
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

const pct = (x) => (100 * x).toFixed(x < 0.1 ? 1 : 0) + " %";
const secs = (t) => t.toFixed(1) + " s";
const fmtNum = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

// ---------------------------------------------------------------- server info ---------------
async function loadServerInfo() {
  const status = $("server-status");
  try {
    const data = await api("GET", "/v1/models");
    const select = $("model");
    select.replaceChildren(new Option("default", ""));
    const parts = [];
    for (const m of data.models) {
      select.append(new Option(m.name + " " + m.version + (m.default ? " (default)" : ""), m.name));
      parts.push(m.name + " " + m.version + " on " + m.device + (m.glance ? ", with a glance network" : ", no glance network"));
    }
    status.textContent = "Server ready: " + parts.join("; ") + ".";
  } catch (err) {
    status.textContent = err.code === "unauthorized"
      ? "This server needs an API key: type it above."
      : "Server: " + err.code + " (" + err.message + ")";
  }
}

// ---------------------------------------------------------------- tabs ----------------------
function setupTabs() {
  const tabs = [$("tab-classify"), $("tab-batch")];
  const select = (tab, focus) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
    history.replaceState(null, "", tab.id === "tab-batch" ? "#batch" : "#");
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab, false));
    tab.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
        ev.preventDefault();
        select(tabs[(i + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length], true);
      }
    });
  });
  if (location.hash === "#batch") select(tabs[1], false);
}

// ---------------------------------------------------------------- classify form -------------
let chosenFile = null;
let objectUrl = null;

function setFile(file) {
  chosenFile = file;
  $("file-name").textContent = file
    ? file.name + " (" + (file.size / 1e6).toFixed(2) + " MB)"
    : "No file chosen.";
  if (file) $("url").value = "";
}

function setupDrop() {
  const drop = $("drop");
  $("file").addEventListener("change", (ev) => setFile(ev.target.files[0] || null));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (ev) => {
      ev.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer.files.length) setFile(ev.dataTransfer.files[0]);
  });
  $("url").addEventListener("input", () => {
    if ($("url").value.trim() && chosenFile) {
      chosenFile = null;
      $("file").value = "";
      $("file-name").textContent = "No file chosen (the URL is used).";
    }
  });
}

function options() {
  const opts = { top_k: 5, return_saliency: true };
  if ($("policy").value) opts.policy = $("policy").value;
  if ($("k").value) opts.k = Number($("k").value);
  if ($("model").value) opts.model = $("model").value;
  return opts;
}

function uploadWithProgress(file, opts, onUploaded) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(opts)) form.append(k, String(v));
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/classify");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) {
        $("progress").value = (100 * ev.loaded) / ev.total;
        setStatus("Uploading " + file.name + ": " + Math.round((100 * ev.loaded) / ev.total) + " %");
      }
    });
    xhr.upload.addEventListener("load", onUploaded);
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(JSON.parse(xhr.responseText));
      } else {
        reject(errorFromBody(xhr.status, xhr.responseText || "", xhr.getResponseHeader("x-request-id"), xhr.getResponseHeader("retry-after")));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "the upload failed: could not reach the server", null, null)));
    xhr.send(form);
  });
}

function setStatus(text) {
  $("status").textContent = text;
}

let runTimer = null;

function startRunning(label) {
  const t0 = performance.now();
  $("progress").removeAttribute("value"); // indeterminate while the model works
  const tick = () => setStatus(label + " " + ((performance.now() - t0) / 1000).toFixed(0) + " s");
  tick();
  clearInterval(runTimer);
  runTimer = setInterval(tick, 1000);
}

async function onClassify(ev) {
  ev.preventDefault();
  const url = $("url").value.trim();
  const file = chosenFile;
  $("error").hidden = true;
  if (!file && !url) {
    showError($("error"), { code: "no_input", message: "choose or drop a video file, or paste its URL" });
    return;
  }
  const btn = $("classify-btn");
  btn.disabled = true;
  $("result").hidden = true; // never show an old answer next to a new request's outcome
  $("player").pause();
  $("progress-box").hidden = false;
  $("progress").value = 0;
  const opts = options();
  const t0 = performance.now();
  try {
    let result;
    if (file) {
      setStatus("Uploading " + file.name + "…");
      result = await uploadWithProgress(file, opts, () => startRunning("Uploaded. The model is working:"));
    } else {
      startRunning("The server is downloading and classifying the video:");
      result = await api("POST", "/v1/classify", { url, ...opts });
    }
    clearInterval(runTimer);
    setStatus("Done in " + ((performance.now() - t0) / 1000).toFixed(1) + " s.");
    showResult(result, file ? { file } : { url });
  } catch (err) {
    clearInterval(runTimer);
    setStatus("Failed: " + (err.code || "error") + ".");
    showError($("error"), err);
  } finally {
    btn.disabled = false;
    $("progress-box").hidden = true;
  }
}

// ---------------------------------------------------------------- the answer ----------------
const view = { result: null, t: 0, playable: false, boxes: [], raf: 0 };

function showResult(result, source) {
  view.result = result;
  view.t = 0;
  $("result").hidden = false;
  renderAnswer(result);
  renderCompute(result);
  setupPlayer(result, source);
  renderTimeline();
  renderWindowList();
  $("raw").textContent = JSON.stringify(result, null, 2);
}

function renderAnswer(r) {
  $("model-line").textContent =
    "Model " + r.model.name + " " + r.model.version + " · policy " + r.policy + " · K = " + r.k +
    " · audio " + r.audio + " · " + r.video.width + "×" + r.video.height + ", " + secs(r.video.duration_s) +
    ", " + r.video.container + (r.early_exit ? " · early exit" : "");
  const heads = $("heads");
  heads.replaceChildren();
  for (const [name, scores] of Object.entries(r.heads)) {
    const box = el("section", "head");
    box.dataset.head = name;
    const h = el("h3", null, name);
    const v = (r.verdicts || {})[name];
    if (v) {
      const badge = el("span", "badge verdict " + v.verdict,
        v.verdict === "known" ? "recognised: " + v.label : "unknown");
      h.append(badge);
    }
    box.append(h);
    if (v) {
      const note = v.verdict === "known"
        ? "Confidence " + pct(v.confidence) + " (threshold " + pct(v.min_confidence) + ")."
        : "Why: " + (REASONS[v.reason] || v.reason || "below threshold") + ". Best class " +
          pct(v.confidence) + ", threshold " + pct(v.min_confidence) + ".";
      box.append(el("p", "verdict-note", note + (v.background != null ? " Background " + pct(v.background) + "." : "")));
    }
    const list = el("ul", "bars");
    list.setAttribute("aria-label", "Top labels of " + name);
    for (const s of scores) {
      const row = el("li", "bar-row");
      const label = el("span", "bar-label", s.label);
      label.title = s.label;
      const track = el("span", "bar-track");
      const fill = el("span", "bar-fill");
      fill.style.display = "block";
      fill.style.width = Math.max(0, Math.min(1, s.score)) * 100 + "%";
      track.append(fill);
      row.append(label, track, el("span", "bar-value", s.score.toFixed(3)));
      list.append(row);
    }
    box.append(list);
    heads.append(box);
  }
  const warns = $("warnings");
  warns.replaceChildren();
  for (const w of r.warnings || []) warns.append(el("li", null, w.code + ": " + w.message));
}

function renderCompute(r) {
  const c = r.compute;
  const box = $("compute");
  box.replaceChildren();
  const frac = c.dense30_gmacs > 0 ? c.gmacs / c.dense30_gmacs : 0;
  const track = el("div", "compute-track");
  track.setAttribute("role", "img");
  track.setAttribute("aria-label", "Compute spent: " + pct(frac) + " of dense 30-view inference");
  const wrap = el("div", "compute-fill-wrap");
  const share = (x) => (c.dense30_gmacs > 0 ? Math.min(1, x / c.dense30_gmacs) * 100 : 0) + "%";
  const g = el("div", "compute-fill glance");
  g.style.width = share(c.glance_gmacs);
  g.title = "glance " + fmtNum(c.glance_gmacs) + " GMACs";
  const hv = el("div", "compute-fill heavy");
  hv.style.width = share(c.heavy_gmacs);
  hv.title = "heavy model " + fmtNum(c.heavy_gmacs) + " GMACs";
  wrap.append(g, hv);
  track.append(wrap);
  box.append(track);
  box.append(el("p", "compute-text",
    fmtNum(c.gmacs) + " GMACs spent (glance " + fmtNum(c.glance_gmacs) + " + heavy " +
    fmtNum(c.heavy_gmacs) + ") = " + pct(frac) + " of dense 30-view inference (" +
    fmtNum(c.dense30_gmacs) + " GMACs, the full bar)."));
  const body = $("timings").tBodies[0];
  body.replaceChildren();
  const total = r.timings_ms.total || Math.max(...Object.values(r.timings_ms), 1);
  for (const [stage, ms] of Object.entries(r.timings_ms)) {
    const tr = el("tr", stage === "total" ? "total" : "");
    const bar = el("div", "t-bar");
    bar.style.width = Math.min(100, (100 * ms) / total) + "%";
    const cell = el("td");
    cell.append(bar);
    tr.append(el("td", null, stage.replace(/_/g, " ")), el("td", "num", ms.toFixed(0) + " ms"), cell);
    body.append(tr);
  }
}

function setupPlayer(r, source) {
  const video = $("player");
  const stage = $("stage");
  // The stage has the video's display aspect ratio, so boxes scale by one factor and the
  // overlay stays right even when the browser cannot play the file.
  const aspect = r.video.width / Math.max(1, r.video.height);
  stage.style.aspectRatio = r.video.width + " / " + r.video.height;
  stage.style.width = "min(100%, calc(62vh * " + aspect.toFixed(4) + "))";
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = source.file ? URL.createObjectURL(source.file) : null;
  view.playable = true;
  $("play-note").textContent = source.file
    ? "Your file, played locally in the browser."
    : "Played from the URL you gave: your browser downloads it from there.";
  video.onerror = () => {
    view.playable = false;
    $("play-note").textContent =
      "Your browser cannot play this file (" + r.video.container + "); the timeline and the crop " +
      "boxes still work: click the timeline or a window to move through the video.";
  };
  video.ontimeupdate = () => {
    if (view.playable) setTime(video.currentTime, false);
  };
  video.onplay = () => {
    const loop = () => {
      setTime(video.currentTime, false);
      if (!video.paused && !video.ended) view.raf = requestAnimationFrame(loop);
    };
    cancelAnimationFrame(view.raf);
    loop();
  };
  video.src = objectUrl || source.url;
  buildBoxes(r);
}

function buildBoxes(r) {
  const layer = $("boxes");
  layer.replaceChildren();
  view.boxes = (r.windows || []).map((w, i) => {
    const b = el("div", "box");
    b.dataset.window = String(i);
    b.append(el("span", null, "window " + (i + 1) + " · weight " + w.saliency.toFixed(2)));
    b.hidden = true;
    layer.append(b);
    return b;
  });
  placeBoxes();
}

function placeBoxes() {
  const r = view.result;
  if (!r || !r.windows) return;
  const stage = $("stage");
  const sx = stage.clientWidth / r.video.width;
  const sy = stage.clientHeight / r.video.height;
  r.windows.forEach((w, i) => {
    const b = view.boxes[i];
    const [x, y, bw, bh] = w.box;
    b.style.left = x * sx + "px";
    b.style.top = y * sy + "px";
    b.style.width = bw * sx + "px";
    b.style.height = bh * sy + "px";
    b.hidden = !(view.t >= w.start_s && view.t < w.end_s);
  });
}

function setTime(t, seekVideo) {
  const r = view.result;
  if (!r) return;
  view.t = Math.max(0, Math.min(t, r.video.duration_s));
  if (seekVideo && view.playable) $("player").currentTime = view.t;
  placeBoxes();
  const head = document.querySelector("#timeline .head");
  if (head) {
    const x = timelineX(view.t);
    head.setAttribute("x1", x);
    head.setAttribute("x2", x);
  }
  const tl = $("timeline");
  tl.setAttribute("aria-valuenow", view.t.toFixed(1));
  tl.setAttribute("aria-valuetext", secs(view.t) + activeText());
  (r.windows || []).forEach((w, i) => {
    const on = view.t >= w.start_s && view.t < w.end_s;
    const rect = document.querySelector('#timeline .win[data-window="' + i + '"]');
    if (rect) rect.classList.toggle("active", on);
    const btn = document.querySelector('#window-list button[data-window="' + i + '"]');
    if (btn) btn.classList.toggle("active", on);
  });
}

function activeText() {
  const r = view.result;
  const on = (r.windows || []).map((w, i) => (view.t >= w.start_s && view.t < w.end_s ? i + 1 : 0)).filter(Boolean);
  return on.length ? ", inside window " + on.join(" and ") : "";
}

const TL = { w: 800, h: 120, padL: 8, padR: 8, top: 10, bottom: 22 };

function timelineX(t) {
  const d = Math.max(view.result.video.duration_s, 1e-6);
  return TL.padL + (t / d) * (TL.w - TL.padL - TL.padR);
}

function renderTimeline() {
  const r = view.result;
  const box = $("timeline");
  TL.w = Math.max(300, box.clientWidth || 800);
  const d = r.video.duration_s;
  const s = svg("svg", { viewBox: "0 0 " + TL.w + " " + TL.h, role: "presentation" });
  s.append(svg("rect", { class: "bg", x: 0.5, y: 0.5, width: TL.w - 1, height: TL.h - TL.bottom }));
  (r.windows || []).forEach((w, i) => {
    const x0 = timelineX(w.start_s);
    const rect = svg("rect", {
      class: "win", "data-window": i, x: x0, y: 1, height: TL.h - TL.bottom - 1,
      width: Math.max(2, timelineX(w.end_s) - x0),
    });
    const title = svg("title");
    title.textContent = "window " + (i + 1) + ": " + secs(w.start_s) + " to " + secs(w.end_s);
    rect.append(title);
    s.append(rect);
  });
  const pts = r.saliency || [];
  if (pts.length) {
    const lo = Math.min(...pts.map((p) => p.score));
    const hi = Math.max(...pts.map((p) => p.score));
    const span = hi - lo || 1;
    const plotH = TL.h - TL.bottom - TL.top - 6;
    const y = (v) => TL.top + plotH - ((v - lo) / span) * plotH;
    const line = pts.map((p) => timelineX(p.t_s).toFixed(1) + "," + y(p.score).toFixed(1)).join(" ");
    s.append(svg("polyline", { class: "curve", points: line }));
    const inWindow = (t) => (r.windows || []).some((w) => t >= w.start_s && t < w.end_s);
    for (const p of pts) {
      const c = svg("circle", {
        class: "pt" + (inWindow(p.t_s) ? " chosen" : ""), cx: timelineX(p.t_s), cy: y(p.score), r: 3.5,
        "data-t": p.t_s, "data-score": p.score,
      });
      const title = svg("title");
      title.textContent = secs(p.t_s) + ": score " + p.score.toFixed(3);
      c.append(title);
      s.append(c);
    }
    $("timeline-help").textContent =
      pts.length + " snippets scored by the " + r.policy + " policy (higher = more likely to be " +
      "looked at); shaded: the " + (r.windows || []).length + " windows the heavy model classified. " +
      "Click, or use the arrow keys, to move through the video.";
  } else {
    const msg = svg("text", { class: "none", x: TL.w / 2, y: (TL.h - TL.bottom) / 2 + 4, "text-anchor": "middle" });
    msg.textContent = "The " + r.policy + " policy scores no snippets: windows only";
    s.append(msg);
    $("timeline-help").textContent =
      "The " + r.policy + " policy places its windows without looking at the video; shaded: the " +
      (r.windows || []).length + " windows classified. Click, or use the arrow keys, to move.";
  }
  const step = d > 120 ? 30 : d > 40 ? 10 : d > 12 ? 2 : 1;
  for (let t = 0; t <= d + 1e-6; t += step) {
    const tick = svg("text", { class: "tick", x: timelineX(t), y: TL.h - 6, "text-anchor": "middle" });
    tick.textContent = t + " s";
    s.append(tick);
  }
  s.append(svg("line", { class: "head", x1: timelineX(view.t), x2: timelineX(view.t), y1: 0, y2: TL.h - TL.bottom }));
  box.replaceChildren(s);
  box.setAttribute("aria-valuemax", d.toFixed(1));
  setTime(view.t, false);
}

function renderWindowList() {
  const list = $("window-list");
  list.replaceChildren();
  (view.result.windows || []).forEach((w, i) => {
    const li = el("li");
    const b = el("button", null, "Window " + (i + 1) + ": " + secs(w.start_s) + "–" + secs(w.end_s) + " · weight " + w.saliency.toFixed(2));
    b.type = "button";
    b.dataset.window = String(i);
    b.addEventListener("click", () => setTime(w.start_s + 1e-3, true));
    li.append(b);
    list.append(li);
  });
}

function setupTimeline() {
  const tl = $("timeline");
  tl.addEventListener("click", (ev) => {
    if (!view.result) return;
    const rect = tl.getBoundingClientRect();
    const x = ((ev.clientX - rect.left) / rect.width) * TL.w;
    const d = view.result.video.duration_s;
    setTime(((x - TL.padL) / (TL.w - TL.padL - TL.padR)) * d, true);
  });
  tl.addEventListener("keydown", (ev) => {
    if (!view.result) return;
    const d = view.result.video.duration_s;
    const moves = { ArrowRight: 0.5, ArrowLeft: -0.5, PageUp: 5, PageDown: -5 };
    if (ev.key in moves) setTime(view.t + moves[ev.key], true);
    else if (ev.key === "Home") setTime(0, true);
    else if (ev.key === "End") setTime(d, true);
    else return;
    ev.preventDefault();
  });
  let pending = 0;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => {
      if (view.result) renderTimeline();
    });
  });
}

// ---------------------------------------------------------------- batch jobs ----------------
const job = { id: null, timer: null, items: new Map(), next: 0 };

async function onSubmitJob(ev) {
  ev.preventDefault();
  $("batch-error").hidden = true;
  const urls = $("urls").value.split(/\s+/).map((u) => u.trim()).filter(Boolean);
  if (!urls.length) {
    showError($("batch-error"), { code: "no_input", message: "paste at least one video URL" });
    return;
  }
  const body = { items: urls.map((url) => ({ url })), top_k: 5, return_saliency: true };
  if ($("batch-policy").value) body.policy = $("batch-policy").value;
  if ($("batch-k").value) body.k = Number($("batch-k").value);
  $("batch-btn").disabled = true;
  try {
    const out = await api("POST", "/v1/jobs", body);
    job.id = out.id;
    job.items = new Map();
    $("job").hidden = false;
    $("job-id").textContent = out.id;
    $("job-items").tBodies[0].replaceChildren();
    $("batch-status").textContent = "Job " + out.id + " submitted with " + urls.length + " videos.";
    renderJob(out);
    poll();
  } catch (err) {
    showError($("batch-error"), err);
    $("batch-status").textContent = "The job was not submitted.";
  } finally {
    $("batch-btn").disabled = false;
  }
}

const FINAL = new Set(["done", "failed", "cancelled"]);

function jobFinished(out) {
  return out.progress.pending === 0 || FINAL.has(out.status);
}

async function poll() {
  clearTimeout(job.timer);
  if (!job.id) return;
  const id = job.id;
  try {
    const out = await api("GET", "/v1/jobs/" + encodeURIComponent(id) + "?limit=200");
    if (id !== job.id) return;
    renderJob(out);
    if (jobFinished(out)) {
      $("batch-status").textContent = "Job " + id + " finished: " + out.status + ".";
      return;
    }
  } catch (err) {
    showError($("batch-error"), err);
    if (err.code === "job_not_found" || err.code === "unauthorized") return;
  }
  job.timer = setTimeout(poll, 1000);
}

function summarize(result) {
  const parts = [];
  for (const [head, scores] of Object.entries(result.heads || {})) {
    const v = (result.verdicts || {})[head];
    const top = scores[0];
    if (v && v.verdict === "unknown") parts.push(head + ": unknown (" + (REASONS[v.reason] || v.reason) + ")");
    else if (top) parts.push(head + ": " + top.label + " " + top.score.toFixed(2));
  }
  return parts.join("; ");
}

function renderJob(out) {
  const p = out.progress;
  const finished = p.done + p.failed + p.cancelled;
  $("job-progress").max = Math.max(1, p.total);
  $("job-progress").value = finished;
  const state = $("job-state");
  state.textContent = out.status;
  state.className = "badge " + out.status;
  $("job-counts").textContent =
    finished + " of " + p.total + " finished: " + p.done + " done, " + p.failed + " failed, " +
    p.cancelled + " cancelled, " + p.pending + " waiting or running." +
    (out.durable ? "" : " (In-process queue: the job is lost if the server restarts.)");
  for (const item of out.items || []) job.items.set(item.index, item);
  $("job-cancel").disabled = jobFinished(out);
  job.next = out.items_next;
  $("job-more").hidden = job.next == null;
  const body = $("job-items").tBodies[0];
  body.replaceChildren();
  for (const item of [...job.items.values()].sort((a, b) => a.index - b.index)) {
    const tr = el("tr", "item " + item.state);
    tr.dataset.state = item.state;
    const answer = el("td");
    if (item.result) {
      const det = el("details");
      det.append(el("summary", null, summarize(item.result)), el("pre", null, JSON.stringify(item.result, null, 2)));
      const show = el("button", "show-item", "Show in the viewer");
      show.type = "button";
      show.addEventListener("click", () => {
        $("tab-classify").click();
        $("error").hidden = true;
        setStatus("Item " + (item.index + 1) + " of job " + job.id + ".");
        showResult(item.result, { url: item.url });
        $("result").scrollIntoView();
      });
      answer.append(det, show);
    } else if (item.error) {
      answer.append(el("span", "error-code", item.error.code + ": " + item.error.message));
    }
    const stateCell = el("td");
    stateCell.append(el("span", "badge " + item.state, item.state));
    tr.append(el("td", null, String(item.index + 1)), el("td", "url", item.url), stateCell, answer);
    body.append(tr);
  }
}

async function loadMoreItems() {
  if (!job.id || job.next == null) return;
  try {
    const out = await api("GET", "/v1/jobs/" + encodeURIComponent(job.id) + "?limit=200&offset=" + job.next);
    renderJob(out);
  } catch (err) {
    showError($("batch-error"), err);
  }
}

async function downloadResults() {
  if (!job.id) return;
  try {
    const resp = await fetch("/v1/jobs/" + encodeURIComponent(job.id) + "/results", { headers: authHeaders() });
    const text = await resp.text();
    if (!resp.ok) throw errorFromBody(resp.status, text, resp.headers.get("x-request-id"), null);
    const link = $("job-download-link");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
    link.download = "avserve-job-" + job.id + ".jsonl";
    link.click();
    $("batch-status").textContent = "Downloaded " + text.split("\n").filter(Boolean).length + " result lines.";
  } catch (err) {
    showError($("batch-error"), err);
  }
}

async function cancelJob() {
  if (!job.id) return;
  try {
    renderJob(await api("DELETE", "/v1/jobs/" + encodeURIComponent(job.id)));
    $("batch-status").textContent = "Cancelled the items that had not started.";
  } catch (err) {
    showError($("batch-error"), err);
  }
}

// ---------------------------------------------------------------- start ---------------------
document.addEventListener("DOMContentLoaded", () => {
  const key = $("api-key");
  key.value = localStorage.getItem(KEY_STORE) || "";
  key.addEventListener("change", () => {
    if (key.value.trim()) localStorage.setItem(KEY_STORE, key.value.trim());
    else localStorage.removeItem(KEY_STORE);
    loadServerInfo();
  });
  setupTabs();
  setupDrop();
  setupTimeline();
  $("classify-form").addEventListener("submit", onClassify);
  $("batch-form").addEventListener("submit", onSubmitJob);
  $("job-download").addEventListener("click", downloadResults);
  $("job-cancel").addEventListener("click", cancelJob);
  $("job-more").addEventListener("click", loadMoreItems);
  loadServerInfo();
});
