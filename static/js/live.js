// Live webcam analysis. WebRTC by default (video track up, results on the "results" data channel),
// WebSocket /ws/live as the alternative (JPEG frames in the binary format of docs/protocol.md,
// at most MAX_IN_FLIGHT frames unanswered so the newest frame always goes next).
import {
  serverConfig, csrfToken, errorMessage, showMessage, clearMessage, decodeLabelMap, colorizeLabels,
  paintMask, drawFaces, renderLegend, faceItem,
} from "./common.js";

const cfg = serverConfig();
const MAX_IN_FLIGHT = 2;
const WS_MAX_WIDTH = 640; // frames are downscaled to this width before JPEG encoding
const ICE_GATHER_TIMEOUT_MS = 4000;

const $ = (id) => document.getElementById(id);
const video = $("live-video");
const overlay = $("live-overlay");
const placeholder = $("live-placeholder");
const startBtn = $("live-start");
const stopBtn = $("live-stop");
const statusEl = $("live-status");
const messageEl = $("live-message");
const cameraSel = $("live-camera");
const opacity = $("live-opacity");
const opacityValue = $("live-opacity-value");
const facesEl = $("live-faces");
const stat = { fps: $("stat-fps"), latency: $("stat-latency"), latencyLabel: $("stat-latency-label"),
  dropped: $("stat-dropped"), results: $("stat-results") };

renderLegend($("live-legend"), cfg.classes);

let run = null; // the running session's state, null when stopped

function transport() {
  const checked = document.querySelector('input[name="transport"]:checked');
  return checked ? checked.value : "webrtc";
}

function setStatus(text) { statusEl.textContent = text; }

function cameraError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "Camera access was denied. Allow the camera for this site in your browser settings, then press Start again.";
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return "No camera was found. Connect a camera (or choose another one) and press Start again.";
  }
  if (name === "NotReadableError" || name === "TrackStartError") {
    return "The camera could not be started: another application may be using it.";
  }
  return `The camera could not be opened: ${err && err.message ? err.message : err}`;
}

async function listCameras(selectedId) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  const keep = selectedId ?? cameraSel.value;
  cameraSel.replaceChildren();
  if (devices.length === 0) {
    cameraSel.append(new Option("No camera found", ""));
    return;
  }
  devices.forEach((d, i) => cameraSel.append(new Option(d.label || `Camera ${i + 1}`, d.deviceId)));
  if (keep && devices.some((d) => d.deviceId === keep)) cameraSel.value = keep;
}

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error("This page cannot use a camera here: camera access needs HTTPS (or localhost)."),
      { name: "InsecureContext" });
  }
  const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30, max: 30 } };
  if (cameraSel.value) video.deviceId = { exact: cameraSel.value };
  return navigator.mediaDevices.getUserMedia({ video, audio: false });
}

// ------------------------------------------------------------------------------ results

function newRun(kind) {
  return {
    kind, stream: null, pc: null, dc: null, ws: null, stopped: false,
    results: 0, dropped: 0, stamps: [], latency: null,
    latest: null, decoding: false, lastList: 0, hello: null,
    nextId: 0, inFlight: new Map(), pumping: false, timer: null, statsTimer: null,
  };
}

function onServerMessage(r, msg) {
  if (!msg || typeof msg !== "object") return;
  switch (msg.type) {
    case "hello":
      r.hello = msg;
      $("live-device").textContent = `Server: ${msg.device || "?"} · ${msg.precision || "?"}`;
      if (r.kind === "websocket") pump(r);
      break;
    case "result": {
      r.inFlight.delete(msg.id);
      r.results += 1;
      const now = performance.now();
      r.stamps.push(now);
      if (r.kind === "websocket" && typeof msg.client_ts === "number") r.latency = now - msg.client_ts;
      else if (msg.timing && typeof msg.timing.latency === "number") r.latency = msg.timing.latency;
      else if (msg.timing && typeof msg.timing.total === "number") r.latency = msg.timing.total;
      r.latest = msg;
      drawLatest(r);
      if (r.kind === "websocket") pump(r);
      break;
    }
    case "dropped":
      r.inFlight.delete(msg.id);
      r.dropped += 1;
      if (r.kind === "websocket") pump(r);
      break;
    case "error":
      if (msg.id !== undefined) r.inFlight.delete(msg.id);
      if (msg.id === undefined || msg.code === "unavailable" || msg.code === "unauthorized") {
        showMessage(messageEl, `Server: ${msg.message || msg.code}`);
      }
      if (r.kind === "websocket") pump(r);
      break;
    default:
      break;
  }
}

async function drawLatest(r) {
  if (r.decoding) return; // the newest result is drawn when the current decode finishes
  r.decoding = true;
  try {
    while (r.latest && !r.stopped) {
      const msg = r.latest;
      r.latest = null;
      let mask = null;
      if (msg.label_map) mask = colorizeLabels(await decodeLabelMap(msg.label_map), cfg.classes);
      if (r.stopped) break;
      const w = video.videoWidth || msg.width;
      const h = video.videoHeight || msg.height;
      if (overlay.width !== w || overlay.height !== h) { overlay.width = w; overlay.height = h; }
      const ctx = overlay.getContext("2d");
      ctx.clearRect(0, 0, w, h);
      if (mask) paintMask(ctx, mask, Number(opacity.value) / 100, w, h);
      drawFaces(ctx, msg.faces, w / msg.width, h / msg.height);
      overlay.dataset.frame = String(msg.id);
      const now = performance.now();
      if (now - r.lastList > 300) {
        r.lastList = now;
        renderFaces(msg.faces);
      }
    }
  } catch (err) {
    console.error("overlay", err);
  } finally {
    r.decoding = false;
  }
}

function renderFaces(faces) {
  if (!faces || faces.length === 0) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "No face in view.";
    facesEl.replaceChildren(li);
    return;
  }
  facesEl.replaceChildren(...faces.map((f, i) => faceItem(f, cfg.classes, i)));
}

function updateStats(r) {
  const now = performance.now();
  // results/s over the last 5 s (at least the last two results, so slow servers still get a number)
  while (r.stamps.length > 2 && now - r.stamps[0] > 5000) r.stamps.shift();
  const fps = r.stamps.length > 1 ? (r.stamps.length - 1) / ((r.stamps[r.stamps.length - 1] - r.stamps[0]) / 1000) : 0;
  stat.fps.textContent = r.stamps.length > 1 ? fps.toFixed(1) : "–";
  stat.latency.textContent = r.latency === null ? "–" : `${Math.round(r.latency)} ms`;
  stat.latencyLabel.textContent = r.kind === "websocket" ? "Latency (round trip)" : "Latency (server)";
  stat.dropped.textContent = String(r.dropped);
  stat.results.textContent = String(r.results);
}

// ------------------------------------------------------------------------------ WebRTC

function iceGatheringDone(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ICE_GATHER_TIMEOUT_MS); // send what we have
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

const RTC_CONNECT_TIMEOUT_MS = 15000;

/** WebRTC could not connect (no usable ICE path, no WebRTC in this browser): same session over /ws/live. */
async function fallBackToWebSocket(r, why) {
  if (r.stopped || run !== r) return;
  stop();
  const ws = document.querySelector('input[name="transport"][value="websocket"]');
  if (ws) ws.checked = true;
  await start();
  showMessage(messageEl, why, "warn");
}

async function startWebRtc(r) {
  if (typeof RTCPeerConnection === "undefined") {
    fallBackToWebSocket(r, "This browser has no WebRTC; using the WebSocket instead.");
    return;
  }
  const pc = new RTCPeerConnection({ iceServers: cfg.ice_servers || [] });
  r.pc = pc;
  for (const track of r.stream.getVideoTracks()) pc.addTrack(track, r.stream);
  const dc = pc.createDataChannel("results");
  r.dc = dc;
  dc.onmessage = (ev) => {
    if (typeof ev.data !== "string") return;
    try { onServerMessage(r, JSON.parse(ev.data)); } catch (err) { console.error(err); }
  };
  dc.onopen = () => setStatus("Connected over WebRTC");
  pc.onconnectionstatechange = () => {
    if (r.stopped) return;
    if (pc.connectionState === "failed") {
      fallBackToWebSocket(r, "The WebRTC connection failed (a TURN server may be needed on this network); using the WebSocket instead.");
    } else if (pc.connectionState === "disconnected") {
      setStatus("Connection interrupted…");
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringDone(pc);
  const res = await fetch("/api/rtc/offer", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
    credentials: "same-origin",
  });
  if (!res.ok) throw await errorMessage(res);
  const answer = await res.json();
  if (r.stopped) return;
  await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
  setStatus("Connecting over WebRTC…");
  r.timer = setTimeout(() => {
    if (!r.stopped && pc.connectionState !== "connected" && r.results === 0) {
      fallBackToWebSocket(r, "WebRTC did not connect within 15 s; using the WebSocket instead.");
    }
  }, RTC_CONNECT_TIMEOUT_MS);
}

// ------------------------------------------------------------------------------ WebSocket

function startWebSocket(r) {
  return new Promise((resolve, reject) => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws/live`);
    ws.binaryType = "arraybuffer";
    r.ws = ws;
    r.capture = document.createElement("canvas");
    let opened = false;
    ws.onopen = () => { opened = true; setStatus("Connected over WebSocket"); resolve(); };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      try { onServerMessage(r, JSON.parse(ev.data)); } catch (err) { console.error(err); }
    };
    ws.onerror = () => { if (!opened) reject(new Error("The WebSocket connection could not be opened.")); };
    ws.onclose = (ev) => {
      if (r.stopped) return;
      const why = ev.code === 4401 ? "Sign in to use live analysis."
        : ev.code === 1013 ? "Live analysis is not available right now: the models are not loaded."
          : `The connection closed (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""}).`;
      showMessage(messageEl, why);
      stop();
    };
  });
}

/** Send the next frame if fewer than MAX_IN_FLIGHT are unanswered (newest frame wins). */
async function pump(r) {
  if (r.stopped || r.pumping || !r.ws || r.ws.readyState !== WebSocket.OPEN || !r.hello) return;
  const now = performance.now();
  for (const [id, sent] of r.inFlight) if (now - sent > 5000) r.inFlight.delete(id); // lost answers
  if (r.inFlight.size >= MAX_IN_FLIGHT) return;
  const maxFps = Math.min(30, (r.hello.limits && r.hello.limits.max_fps) || cfg.max_live_fps || 30);
  const wait = r.lastSent ? r.lastSent + 1000 / maxFps - now : 0;
  if (wait > 0) {
    if (!r.timer) r.timer = setTimeout(() => { r.timer = null; pump(r); }, wait);
    return;
  }
  if (!video.videoWidth) {
    if (!r.timer) r.timer = setTimeout(() => { r.timer = null; pump(r); }, 50);
    return;
  }
  r.pumping = true;
  try {
    const scale = Math.min(1, WS_MAX_WIDTH / video.videoWidth);
    const w = Math.round(video.videoWidth * scale);
    const h = Math.round(video.videoHeight * scale);
    const c = r.capture;
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    c.getContext("2d").drawImage(video, 0, 0, w, h);
    const blob = await new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.8));
    if (!blob || r.stopped || r.ws.readyState !== WebSocket.OPEN) return;
    const id = r.nextId++;
    const ts = performance.now();
    const header = new TextEncoder().encode(JSON.stringify({ id, ts }));
    const jpeg = new Uint8Array(await blob.arrayBuffer());
    const msg = new Uint8Array(4 + header.length + jpeg.length);
    new DataView(msg.buffer).setUint32(0, header.length); // big-endian
    msg.set(header, 4);
    msg.set(jpeg, 4 + header.length);
    r.ws.send(msg);
    r.inFlight.set(id, ts);
    r.lastSent = ts;
  } finally {
    r.pumping = false;
  }
  pump(r); // fill the second slot, or schedule the next frame
}

// ------------------------------------------------------------------------------ start / stop

async function start() {
  if (run) return;
  clearMessage(messageEl);
  const r = newRun(transport());
  run = r;
  startBtn.disabled = true;
  stopBtn.disabled = false;
  setStatus("Opening the camera…");
  try {
    r.stream = await openCamera();
  } catch (err) {
    showMessage(messageEl, err.name === "InsecureContext" ? err.message : cameraError(err));
    run = null;
    startBtn.disabled = false;
    stopBtn.disabled = true;
    setStatus("Stopped");
    return;
  }
  video.srcObject = r.stream;
  placeholder.style.display = "none";
  const track = r.stream.getVideoTracks()[0];
  listCameras(track && track.getSettings ? track.getSettings().deviceId : undefined).catch(() => {});
  if (track) track.addEventListener("ended", () => { if (!r.stopped) { showMessage(messageEl, "The camera stopped."); stop(); } });
  r.statsTimer = setInterval(() => updateStats(r), 500);
  try {
    if (r.kind === "webrtc") await startWebRtc(r);
    else await startWebSocket(r);
  } catch (err) {
    if (!r.stopped) {
      showMessage(messageEl, `Could not start live analysis: ${err.message || err}`);
      stop();
    }
  }
}

function stop() {
  const r = run;
  if (!r) return;
  r.stopped = true;
  run = null;
  clearTimeout(r.timer);
  clearInterval(r.statsTimer);
  if (r.dc) try { r.dc.close(); } catch { /* already closed */ }
  if (r.pc) try { r.pc.close(); } catch { /* already closed */ }
  if (r.ws) try { r.ws.close(1000, "stopped"); } catch { /* already closed */ }
  if (r.stream) r.stream.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  placeholder.style.display = "flex";
  startBtn.disabled = false;
  stopBtn.disabled = true;
  setStatus("Stopped");
  updateStats(r);
}

startBtn.addEventListener("click", start);
stopBtn.addEventListener("click", stop);
cameraSel.addEventListener("change", () => {
  if (run) { const kind = run.kind; stop(); if (kind) start(); }
});
document.querySelectorAll('input[name="transport"]').forEach((el) => el.addEventListener("change", () => {
  if (run) { stop(); start(); }
}));
opacity.addEventListener("input", () => { opacityValue.textContent = `${opacity.value}%`; });
window.addEventListener("pagehide", stop);
if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
  navigator.mediaDevices.addEventListener("devicechange", () => listCameras().catch(() => {}));
}
listCameras().catch(() => {});

// for tests and debugging: the live counters
window.identixLive = { get state() { return run ? { kind: run.kind, results: run.results, dropped: run.dropped } : null; } };
