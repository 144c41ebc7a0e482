// Shared helpers for the analysis pages: server config, CSRF, JSON errors, the label-map encoding
// of docs/protocol.md (an 8-bit PNG whose pixel values are class ids) and overlay drawing.

const FALLBACK_CLASSES = [
  ["background", [0, 0, 0]], ["skin", [255, 204, 153]], ["left_eyebrow", [153, 51, 255]],
  ["right_eyebrow", [102, 0, 204]], ["left_eye", [0, 204, 255]], ["right_eye", [0, 102, 255]],
  ["nose", [255, 153, 0]], ["upper_lip", [255, 51, 102]], ["inner_mouth", [153, 0, 51]],
  ["lower_lip", [204, 0, 102]], ["hair", [102, 51, 0]],
].map(([name, color], id) => ({ id, name, label: name.replace("_", " "), color }));

/** The JSON block the server renders into every page (pages.client_config). */
export function serverConfig() {
  const el = document.getElementById("identix-config");
  let cfg = {};
  if (el) {
    try { cfg = JSON.parse(el.textContent); } catch { cfg = {}; }
  }
  if (!Array.isArray(cfg.classes) || cfg.classes.length === 0) cfg.classes = FALLBACK_CLASSES;
  return cfg;
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** Turn a failed response into a readable message (our API answers {"error": {code, message}}). */
export async function errorMessage(response) {
  let text = "";
  try { text = await response.text(); } catch { /* body unreadable */ }
  return errorFromText(response.status, text);
}

export function errorFromText(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && body.error) {
      const err = new Error(body.error.message || body.error.code || `HTTP ${status}`);
      err.code = body.error.code;
      err.status = status;
      return err;
    }
  } catch { /* not JSON */ }
  const err = new Error(status === 401 ? "Your session has ended: sign in again." : `The server answered HTTP ${status}.`);
  err.code = status === 401 ? "unauthorized" : "http_error";
  err.status = status;
  return err;
}

export function showMessage(el, text, kind = "error") {
  if (!el) return;
  el.textContent = text;
  el.className = `notice ${kind}`;
  el.hidden = !text;
}

export function clearMessage(el) {
  if (el) { el.textContent = ""; el.hidden = true; }
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function formatPercent(p) {
  return p === null || p === undefined || Number.isNaN(p) ? "–" : `${Math.round(p * 100)}%`;
}

const STATE_TEXT = {
  collecting: "collecting evidence",
  likely_real: "likely real",
  likely_fake: "likely fake",
  uncertain: "uncertain",
};

export function stateText(state) {
  return STATE_TEXT[state] || state || "collecting evidence";
}

/** A badge element for a deepfake state. */
export function stateBadge(state) {
  const span = document.createElement("span");
  const s = STATE_TEXT[state] ? state : "collecting";
  span.className = `badge ${s}`;
  span.textContent = stateText(s);
  return span;
}

// --------------------------------------------------------------------------- label maps

/** Decode the protocol's label map ({encoding: "png", width, height, data: base64}) or a PNG Blob
 *  into {width, height, labels: Uint8Array of class ids}. */
export async function decodeLabelMap(encoded) {
  let blob;
  if (encoded instanceof Blob) {
    blob = encoded;
  } else if (encoded && encoded.encoding === "png" && typeof encoded.data === "string") {
    const bin = atob(encoded.data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    blob = new Blob([bytes], { type: "image/png" });
  } else {
    throw new Error("unsupported label map encoding");
  }
  // No colour management or premultiplication: pixel values must stay the class ids exactly.
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const { width, height } = bitmap;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const labels = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < labels.length; i++, j += 4) labels[i] = rgba[j];
  return { width, height, labels };
}

/** A canvas of the label map's size with each class painted in its palette colour (background
 *  and hidden classes transparent). */
export function colorizeLabels(map, classes, hidden = new Set()) {
  const canvas = document.createElement("canvas");
  canvas.width = map.width;
  canvas.height = map.height;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(map.width, map.height);
  const lut = new Uint8Array(256 * 4);
  for (const c of classes) {
    if (c.id === 0 || hidden.has(c.id)) continue;
    lut.set([c.color[0], c.color[1], c.color[2], 255], c.id * 4);
  }
  const out = img.data;
  const labels = map.labels;
  for (let i = 0, j = 0; i < labels.length; i++, j += 4) {
    const k = labels[i] * 4;
    out[j] = lut[k]; out[j + 1] = lut[k + 1]; out[j + 2] = lut[k + 2]; out[j + 3] = lut[k + 3];
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/** Paint a colourised label map over whatever is on ``ctx``, scaled to (w, h), at ``alpha``. */
export function paintMask(ctx, maskCanvas, alpha, w, h) {
  ctx.save();
  ctx.globalAlpha = alpha;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(maskCanvas, 0, 0, w, h);
  ctx.restore();
}

const TRACK_COLORS = ["#ffd166", "#06d6a0", "#4cc9f0", "#f72585", "#b5e48c", "#ff9f1c", "#c77dff", "#90e0ef"];

export function trackColor(trackId) {
  const n = Number.isFinite(trackId) ? trackId : 0;
  return TRACK_COLORS[((n % TRACK_COLORS.length) + TRACK_COLORS.length) % TRACK_COLORS.length];
}

/** Boxes, track ids and running confidence for each face; (sx, sy) scale frame pixels to ctx. */
export function drawFaces(ctx, faces, sx, sy) {
  const lw = Math.max(2, Math.round(Math.min(ctx.canvas.width, ctx.canvas.height) / 240));
  const fontPx = Math.max(12, Math.round(Math.min(ctx.canvas.width, ctx.canvas.height) / 32));
  ctx.save();
  ctx.lineWidth = lw;
  ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  for (const face of faces || []) {
    const [x1, y1, x2, y2] = face.box;
    const color = trackColor(face.track_id);
    ctx.strokeStyle = color;
    if (face.track_state === "lost") ctx.setLineDash([6, 4]);
    ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    ctx.setLineDash([]);
    const df = face.deepfake || {};
    const conf = df.p_fake === null || df.p_fake === undefined ? "" : ` · fake ${formatPercent(df.p_fake)}`;
    const text = `#${face.track_id ?? "?"}${conf}`;
    const tw = ctx.measureText(text).width + 8;
    const ty = Math.max(0, y1 * sy - fontPx - 6);
    ctx.fillStyle = "rgba(0,0,0,0.72)";
    ctx.fillRect(x1 * sx, ty, tw, fontPx + 6);
    ctx.fillStyle = color;
    ctx.fillText(text, x1 * sx + 4, ty + 3);
    drawBlendPeak(ctx, face, sx, sy, lw);
  }
  ctx.restore();
}

/** Where the blend CNN's evidence peaks (observations.blend.point), marked only when it reads a
 * seam (blend >= 0.5): a dashed ring a quarter of the face box across. */
function drawBlendPeak(ctx, face, sx, sy, lw) {
  const df = face.deepfake || {};
  const blend = (df.factors || {}).blend;
  const point = ((df.observations || {}).blend || {}).point;
  if (typeof blend !== "number" || blend < 0.5 || !Array.isArray(point)) return;
  const [x1, y1, x2, y2] = face.box;
  const r = Math.max(6, 0.125 * Math.max((x2 - x1) * sx, (y2 - y1) * sy));
  ctx.save();
  ctx.strokeStyle = "#ffd400";
  ctx.lineWidth = lw;
  ctx.setLineDash([4, 3]);
  ctx.beginPath();
  ctx.arc(point[0] * sx, point[1] * sy, r, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.restore();
}

/** The legend of the 11 classes (optionally with toggles). */
export function renderLegend(listEl, classes) {
  listEl.replaceChildren();
  for (const c of classes) {
    if (c.id === 0) continue;
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = `rgb(${c.color.join(",")})`;
    li.append(sw, document.createTextNode(c.label));
    listEl.append(li);
  }
}

// Which "what the factors saw" lists the user unfolded, by person: live and video redraw the face
// list on every result, and a list must stay open across those redraws.
const openObservations = new Set();

/** "What the factors saw": one line per factor (its note's text), folded away by default; ``key``
 * (e.g. the track id) keeps it unfolded across redraws once the user opened it. */
export function observationList(entries, key = null) {
  const box = document.createElement("details");
  box.className = "observations small";
  if (key !== null) {
    box.open = openObservations.has(key);
    box.addEventListener("toggle", () => {
      if (box.open) openObservations.add(key);
      else openObservations.delete(key);
    });
  }
  const summary = document.createElement("summary");
  summary.textContent = "what the factors saw";
  const list = document.createElement("ul");
  for (const [name, note] of entries) {
    const item = document.createElement("li");
    const label = document.createElement("strong");
    label.textContent = `${name.replace(/_/g, " ")}: `;
    item.append(label, document.createTextNode(note && note.text ? note.text : ""));
    list.append(item);
  }
  box.append(summary, list);
  return box;
}

/** A list item per face: track id, detector score, deepfake state and the largest regions. */
export function faceItem(face, classes, index, { still = false } = {}) {
  const li = document.createElement("li");
  const title = document.createElement("div");
  title.className = "face-title";
  const name = document.createElement("span");
  name.textContent = face.track_id !== undefined && face.track_id !== null ? `Person #${face.track_id}` : `Face ${index + 1}`;
  name.style.borderLeft = `4px solid ${trackColor(face.track_id ?? index)}`;
  name.style.paddingLeft = "0.4rem";
  const df = face.deepfake || {};
  const noScore = still && (df.p_fake === null || df.p_fake === undefined) && (!df.state || df.state === "collecting");
  if (noScore) {
    const badge = stateBadge("collecting");
    badge.textContent = "no deepfake score";
    title.append(name, badge);
  } else {
    title.append(name, stateBadge(df.state));
  }
  li.append(title);
  const details = document.createElement("div");
  details.className = "muted small";
  const parts = [];
  if (typeof face.score === "number") parts.push(`detector ${formatPercent(face.score)}`);
  if (df.p_fake !== null && df.p_fake !== undefined) parts.push(`fake ${formatPercent(df.p_fake)}`);
  if (df.single_image) parts.push("single image: weaker evidence");
  if (Array.isArray(face.box)) parts.push(`box ${face.box.map((v) => Math.round(v)).join(", ")}`);
  details.textContent = parts.join(" · ");
  li.append(details);
  const areas = Object.entries(face.class_areas || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  if (areas.length) {
    const byName = Object.fromEntries(classes.map((c) => [c.name, c]));
    const line = document.createElement("div");
    line.className = "small";
    line.textContent = areas.slice(0, 5).map(([k, n]) => `${byName[k] ? byName[k].label : k} ${n} px`).join(" · ");
    li.append(line);
  }
  const factors = Object.entries(df.factors || {});
  if (factors.length) {
    const f = document.createElement("div");
    f.className = "muted small";
    f.textContent = "factors: " + factors.map(([k, v]) => `${k.replace(/_/g, " ")} ${typeof v === "number" ? v.toFixed(2) : v}`).join(" · ");
    li.append(f);
  }
  const seen = Object.entries(df.observations || {});
  if (seen.length) li.append(observationList(seen, face.track_id ?? index));
  return li;
}

export function downloadBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function baseName(filename) {
  return (filename || "upload").replace(/\.[^.]*$/, "").replace(/[^\w.-]+/g, "_").slice(0, 60) || "upload";
}
