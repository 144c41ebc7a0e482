// Video analysis (docs/uploads.md): create a job, follow its Server-Sent Events, then PUT the file
// with upload progress. Results are drawn as they arrive: the analysed frame (seeked in a local
// <video> of the same file) with its mask, a per-person chart of the deepfake confidence, the
// final summary and the downloads (annotated MP4, JSON).
import {
  serverConfig, csrfToken, errorMessage, errorFromText, showMessage, clearMessage, decodeLabelMap,
  colorizeLabels, paintMask, drawFaces, renderLegend, faceItem, trackColor, formatBytes, formatPercent,
  stateBadge, observationList,
} from "./common.js";
import { drawChart } from "./chart.js";

const cfg = serverConfig();
const $ = (id) => document.getElementById(id);
const fileInput = $("video-file");
const drop = $("video-drop");
const messageEl = $("video-message");
const statusEl = $("video-status");
const cancelBtn = $("video-cancel");
const strideInput = $("video-stride");
const uploadBar = $("video-upload-progress");
const uploadText = $("video-upload-text");
const analysisBar = $("video-analysis-progress");
const analysisText = $("video-analysis-text");
const canvas = $("video-canvas");
const placeholder = $("video-placeholder");
const source = $("video-source");
const chart = $("video-chart");
const chartLegend = $("video-chart-legend");
const facesEl = $("video-faces");
const opacity = $("video-opacity");
const MASK_SCALE = 0.5; // label maps at half size: a quarter of the event-stream volume

renderLegend($("video-legend"), cfg.classes);

let job = null;

function newJob(file) {
  return {
    file, id: null, urls: null, es: null, xhr: null, info: null, over: false,
    tracks: new Map(), // track_id -> {points, framePoints, last}
    latest: null, drawing: false, sourceOk: null, analysed: 0, summary: null,
    chartPending: false, listAt: 0,
  };
}

function setStatus(text) { statusEl.textContent = text; }

// ------------------------------------------------------------------------------ drawing

function scheduleChart(j) {
  if (j.chartPending) return;
  j.chartPending = true;
  requestAnimationFrame(() => { j.chartPending = false; renderChart(j); });
}

function chartSeries(j) {
  return [...j.tracks.entries()].map(([id, t]) => ({
    id, color: trackColor(id), points: t.points, framePoints: t.framePoints,
  }));
}

function renderChart(j) {
  const series = chartSeries(j);
  drawChart(chart, series, { duration: j.info && j.info.duration_s ? j.info.duration_s : 0 });
  chart.dataset.series = String(series.length);
  chart.dataset.points = String(series.reduce((n, s) => n + s.points.filter((p) => p[1] !== null).length
    + s.framePoints.filter((p) => p[1] !== null).length, 0));
  chartLegend.replaceChildren(...series.map((s) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = s.color;
    const t = j.tracks.get(s.id);
    const df = (t.last && t.last.deepfake) || {};
    li.append(sw, document.createTextNode(`Person #${s.id}` + (df.p_fake !== null && df.p_fake !== undefined ? ` · ${formatPercent(df.p_fake)}` : "")));
    return li;
  }));
}

function seekTo(t) {
  return new Promise((resolve, reject) => {
    const done = () => { cleanup(); resolve(); };
    const fail = () => { cleanup(); reject(new Error("seek failed")); };
    const timer = setTimeout(() => { cleanup(); resolve(); }, 8000); // slow seek: draw what is there
    function cleanup() { clearTimeout(timer); source.removeEventListener("seeked", done); source.removeEventListener("error", fail); }
    source.addEventListener("seeked", done);
    source.addEventListener("error", fail);
    source.currentTime = Math.max(0, t);
  });
}

/** Draw the newest result: its frame from the local copy of the file when the browser can decode
 *  it, else the mask on a dark background. Newer results replace older ones while one is drawn. */
async function drawLatest(j) {
  if (j.drawing) return;
  j.drawing = true;
  try {
    while (j.latest && job === j) {
      const msg = j.latest;
      j.latest = null;
      const map = msg.label_map ? await decodeLabelMap(msg.label_map) : null;
      let frameOk = false;
      if (j.sourceOk !== false && typeof msg.timestamp === "number") {
        try {
          await seekTo(msg.timestamp);
          frameOk = source.videoWidth > 0 && source.readyState >= 2; // HAVE_CURRENT_DATA
        } catch { j.sourceOk = false; } // the browser cannot decode this file: masks only
      }
      const w = msg.width;
      const h = msg.height;
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#111";
      ctx.fillRect(0, 0, w, h);
      if (frameOk) ctx.drawImage(source, 0, 0, w, h);
      if (map) paintMask(ctx, colorizeLabels(map, cfg.classes), frameOk ? Number(opacity.value) / 100 : 1, w, h);
      drawFaces(ctx, msg.faces, 1, 1);
      canvas.hidden = false;
      placeholder.hidden = true;
      canvas.dataset.frame = String(msg.frame ?? msg.id);
    }
  } catch (err) {
    console.error("frame", err);
  } finally {
    j.drawing = false;
  }
}

function renderPeople(j) {
  const entries = [...j.tracks.entries()].filter(([, t]) => t.last);
  if (entries.length === 0) return;
  facesEl.replaceChildren(...entries.map(([, t], i) => faceItem(t.last, cfg.classes, i)));
}

function renderSummary(j, msg) {
  const body = $("video-summary");
  body.replaceChildren();
  const tracks = msg.tracks || [];
  for (const t of tracks) {
    const tr = document.createElement("tr");
    const df = t.deepfake || {};
    const person = document.createElement("td");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = trackColor(t.track_id);
    sw.style.display = "inline-block";
    sw.style.marginRight = "0.4rem";
    person.append(sw, document.createTextNode(`#${t.track_id}`));
    const verdict = document.createElement("td");
    verdict.append(stateBadge(df.state));
    const seen = Object.entries(df.observations || {});
    if (seen.length) verdict.append(observationList(seen));
    tr.append(person, cell(String(t.frames_seen)), cell(`${fmtTime(t.first_ts)} – ${fmtTime(t.last_ts)}`), verdict,
      cell(formatPercent(df.p_fake)));
    body.append(tr);
    // the summary's timeline is the authoritative running confidence
    if (Array.isArray(t.timeline) && t.timeline.length) {
      const entry = j.tracks.get(t.track_id) || { points: [], framePoints: [], last: null };
      entry.points = t.timeline.map(([ts, p]) => [ts, p]);
      j.tracks.set(t.track_id, entry);
    }
  }
  if (tracks.length === 0) body.append(Object.assign(document.createElement("tr"), { innerHTML: '<td colspan="5">No face was found in the analysed frames.</td>' }));
  const notes = [`${msg.frames_analyzed ?? j.analysed} of ${msg.frames_decoded ?? "?"} frames analysed`];
  if (msg.stride > 1) notes.push(`every ${msg.stride} frames`);
  if (msg.warning) notes.push(msg.warning.message);
  $("video-summary-note").textContent = notes.join(" · ");
  $("video-summary-card").hidden = false;
  scheduleChart(j);
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function fmtTime(t) {
  return typeof t === "number" ? `${t.toFixed(1)} s` : "–";
}

function enableLink(id, href, label) {
  const a = $(id);
  a.href = href;
  a.removeAttribute("aria-disabled");
  a.setAttribute("download", "");
  if (label) a.textContent = label;
}

// ------------------------------------------------------------------------------ events

function onEvent(j, msg) {
  if (job !== j) return;
  switch (msg.type) {
    case "video":
      j.info = msg.video;
      setStatus(`Analysing ${j.file.name}: ${msg.video.width}×${msg.video.height}` +
        (msg.video.fps ? ` at ${msg.video.fps} fps` : "") + (msg.streamed ? " (while it uploads)" : ""));
      break;
    case "result": {
      j.analysed += 1;
      for (const face of msg.faces) {
        const t = j.tracks.get(face.track_id) || { points: [], framePoints: [], last: null };
        const df = face.deepfake || {};
        t.points.push([msg.timestamp, df.p_fake ?? null]);
        t.framePoints.push([msg.timestamp, df.frame_p_fake ?? null]);
        t.last = face;
        j.tracks.set(face.track_id, t);
      }
      j.latest = msg;
      drawLatest(j);
      scheduleChart(j);
      const now = performance.now();
      if (now - j.listAt > 400) { j.listAt = now; renderPeople(j); }
      break;
    }
    case "progress": {
      const total = msg.frames_total;
      if (total) {
        analysisBar.max = total;
        analysisBar.value = msg.frames_decoded;
      }
      analysisText.textContent = total
        ? `${msg.frames_analyzed} analysed, ${msg.frames_decoded} of ~${total} frames decoded`
        : `${msg.frames_analyzed} frames analysed`;
      break;
    }
    case "summary":
      renderPeople(j);
      renderSummary(j, msg);
      break;
    case "done":
      analysisBar.max = 1;
      analysisBar.value = 1;
      setStatus(`Done: ${j.file.name}`);
      enableLink("dl-results", `/api/videos/${j.id}/results.json`);
      cancelBtn.hidden = true;
      if (!msg.status || msg.status.annotated === "disabled") finish(j);
      break;
    case "annotated":
      if (msg.state === "ready") enableLink("dl-video", msg.url, "Annotated MP4");
      else $("dl-video").textContent = "Annotated MP4 failed";
      finish(j);
      break;
    case "error":
      showMessage(messageEl, msg.code === "cancelled" ? "The analysis was cancelled." : `The analysis stopped: ${msg.message}`,
        msg.code === "cancelled" ? "warn" : "error");
      setStatus("Stopped");
      finish(j);
      break;
    default:
      break;
  }
}

function finish(j) {
  j.over = true;
  cancelBtn.hidden = true;
  if (j.es) j.es.close();
  if (j.xhr && j.xhr.readyState !== XMLHttpRequest.DONE) j.xhr.abort();
}

function upload(j) {
  const xhr = new XMLHttpRequest();
  j.xhr = xhr;
  xhr.open("PUT", j.urls.upload);
  xhr.setRequestHeader("X-CSRF-Token", csrfToken());
  xhr.setRequestHeader("Content-Type", j.file.type || "application/octet-stream");
  xhr.upload.onprogress = (ev) => {
    if (!ev.lengthComputable) return;
    uploadBar.max = ev.total;
    uploadBar.value = ev.loaded;
    uploadText.textContent = `${formatBytes(ev.loaded)} of ${formatBytes(ev.total)} (${Math.round((100 * ev.loaded) / ev.total)}%)`;
  };
  xhr.upload.onload = () => {
    uploadBar.value = uploadBar.max;
    uploadText.textContent = `${formatBytes(j.file.size)} uploaded`;
  };
  xhr.onload = () => {
    if (xhr.status >= 400 && !j.over) {
      const err = errorFromText(xhr.status, xhr.responseText);
      showMessage(messageEl, `The upload was refused: ${err.message}`);
      setStatus("Stopped");
      finish(j);
    }
  };
  xhr.onerror = () => {
    if (!j.over) { showMessage(messageEl, "The upload failed: the connection to the server was lost."); finish(j); }
  };
  xhr.send(j.file);
}

async function start(file) {
  if (!file) return;
  if (job && !job.over) { showMessage(messageEl, "A video is still being analysed: cancel it first.", "warn"); return; }
  clearMessage(messageEl);
  if (cfg.max_upload_bytes && file.size > cfg.max_upload_bytes) {
    showMessage(messageEl, `${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(cfg.max_upload_bytes)}.`);
    return;
  }
  const j = newJob(file);
  job = j;
  resetView(j);
  setStatus(`Creating a job for ${file.name}…`);
  const stride = Math.max(1, Math.min(1000, Math.round(Number(strideInput.value) || 1)));
  let res;
  try {
    res = await fetch(`/api/videos/jobs?stride=${stride}&mask_scale=${MASK_SCALE}`, {
      method: "POST", headers: { "X-CSRF-Token": csrfToken() }, credentials: "same-origin",
    });
  } catch {
    showMessage(messageEl, "The server could not be reached.");
    j.over = true;
    return;
  }
  if (!res.ok) {
    const err = await errorMessage(res);
    showMessage(messageEl, `Could not start the analysis: ${err.message}`);
    setStatus("Stopped");
    j.over = true;
    return;
  }
  const status = await res.json();
  j.id = status.job_id;
  j.urls = status.urls;
  // follow the events first, so no result is missed; EventSource resumes by itself (Last-Event-ID)
  const es = new EventSource(j.urls.events);
  j.es = es;
  es.onmessage = (ev) => {
    try { onEvent(j, JSON.parse(ev.data)); } catch (err) { console.error(err); }
  };
  es.onerror = () => { if (j.over) es.close(); };
  cancelBtn.hidden = false;
  setStatus(`Uploading ${file.name}…`);
  upload(j);
}

function resetView(j) {
  uploadBar.max = 1; uploadBar.value = 0; uploadText.textContent = "–";
  analysisBar.max = 1; analysisBar.value = 0; analysisText.textContent = "–";
  $("video-summary-card").hidden = true;
  $("video-summary").replaceChildren();
  for (const id of ["dl-video", "dl-results"]) { $(id).removeAttribute("href"); $(id).setAttribute("aria-disabled", "true"); }
  $("dl-video").textContent = "Annotated MP4 (rendering…)";
  facesEl.replaceChildren(Object.assign(document.createElement("li"), { className: "muted", textContent: "No results yet." }));
  canvas.hidden = true;
  placeholder.hidden = false;
  if (source.src) URL.revokeObjectURL(source.src);
  j.sourceOk = null;
  source.src = URL.createObjectURL(j.file);
  source.onerror = () => { j.sourceOk = false; };
  renderChart(j);
}

cancelBtn.addEventListener("click", async () => {
  const j = job;
  if (!j || j.over || !j.id) return;
  cancelBtn.disabled = true;
  try {
    await fetch(`/api/videos/${j.id}`, { method: "DELETE", headers: { "X-CSRF-Token": csrfToken() }, credentials: "same-origin" });
  } finally {
    cancelBtn.disabled = false;
  }
});
fileInput.addEventListener("change", () => start(fileInput.files[0]));
for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("dragover"); });
for (const ev of ["dragleave", "dragend"]) drop.addEventListener(ev, () => drop.classList.remove("dragover"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("dragover");
  const file = e.dataTransfer && e.dataTransfer.files[0];
  if (file) start(file);
});
opacity.addEventListener("input", () => { opacityValue(); });
function opacityValue() { $("video-opacity-value").textContent = `${opacity.value}%`; }
document.addEventListener("identix:theme", () => { if (job) renderChart(job); else drawChart(chart, []); });
window.addEventListener("resize", () => { if (job) scheduleChart(job); else drawChart(chart, []); });
drawChart(chart, []);
