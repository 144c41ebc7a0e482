// Image analysis: upload (file picker or drag and drop) to POST /api/images, then the overlay is
// drawn on a canvas from the returned label map (class ids), with an opacity slider, a legend, a
// list of faces and downloads of the mask, the overlay and the JSON.
import {
  serverConfig, csrfToken, errorFromText, showMessage, clearMessage, decodeLabelMap, colorizeLabels,
  paintMask, drawFaces, renderLegend, faceItem, downloadBlob, baseName, formatBytes,
} from "./common.js";

const cfg = serverConfig();
const $ = (id) => document.getElementById(id);
const fileInput = $("image-file");
const drop = $("image-drop");
const statusEl = $("image-status");
const messageEl = $("image-message");
const canvas = $("image-canvas");
const placeholder = $("image-placeholder");
const opacity = $("image-opacity");
const opacityValue = $("image-opacity-value");
const boxes = $("image-boxes");
const facesEl = $("image-faces");
const ACCEPTED = ["image/jpeg", "image/png", "image/webp"];

renderLegend($("image-legend"), cfg.classes);

let current = null; // {name, bitmap, result, labels, maskCanvas}
let busy = false;

function render() {
  if (!current) return;
  const { bitmap, result, maskCanvas } = current;
  const w = bitmap ? bitmap.width : result.width;
  const h = bitmap ? bitmap.height : result.height;
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  if (bitmap) ctx.drawImage(bitmap, 0, 0);
  if (maskCanvas) paintMask(ctx, maskCanvas, Number(opacity.value) / 100, w, h);
  if (boxes.checked) drawFaces(ctx, result.faces, w / result.width, h / result.height);
  canvas.hidden = false;
  placeholder.hidden = true;
}

function renderFaces(result) {
  facesEl.replaceChildren();
  const note = document.createElement("li");
  note.className = "muted";
  note.textContent = result.message || `${result.faces.length} face(s) found`;
  if (result.faces.length === 0) { facesEl.append(note); return; }
  result.faces.forEach((f, i) => facesEl.append(faceItem(f, cfg.classes, i, { still: true })));
}

function postImage(file) {
  // XMLHttpRequest for upload progress (fetch has none for request bodies)
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/images");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.responseType = "text";
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) statusEl.textContent = `Uploading… ${Math.round((100 * ev.loaded) / ev.total)}%`;
    };
    xhr.upload.onload = () => { statusEl.textContent = "Analysing…"; };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try { resolve(JSON.parse(xhr.responseText)); } catch { reject(new Error("The server's answer was not JSON.")); }
      } else {
        reject(errorFromText(xhr.status, xhr.responseText));
      }
    };
    xhr.onerror = () => reject(new Error("The upload failed: the server could not be reached."));
    const body = new FormData();
    body.append("image", file, file.name || "image");
    xhr.send(body);
  });
}

async function analyse(file) {
  if (!file || busy) return;
  clearMessage(messageEl);
  if (file.type && !ACCEPTED.includes(file.type)) {
    showMessage(messageEl, `${file.name} is not a JPEG, PNG or WebP image.`);
    return;
  }
  if (cfg.max_upload_bytes && file.size > cfg.max_upload_bytes) {
    showMessage(messageEl, `${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(cfg.max_upload_bytes)}.`);
    return;
  }
  busy = true;
  drop.setAttribute("aria-busy", "true");
  statusEl.textContent = `Uploading ${file.name} (${formatBytes(file.size)})…`;
  try {
    const result = await postImage(file);
    let bitmap = null;
    try { bitmap = await createImageBitmap(file); } catch { bitmap = null; } // the server decoded it anyway
    const labels = result.label_map ? await decodeLabelMap(result.label_map) : null;
    const maskCanvas = labels ? colorizeLabels(labels, cfg.classes) : null;
    if (current && current.bitmap) current.bitmap.close();
    current = { name: file.name, bitmap, result, labels, maskCanvas };
    render();
    renderFaces(result);
    statusEl.textContent = `${file.name}: ${result.message || `${result.faces.length} face(s) found`}` +
      (result.timing && result.timing.total ? ` · ${Math.round(result.timing.total)} ms` : "");
    for (const id of ["dl-overlay", "dl-mask", "dl-color", "dl-json"]) $(id).disabled = false;
    $("dl-mask").disabled = !labels;
    $("dl-color").disabled = !labels;
  } catch (err) {
    showMessage(messageEl, `Could not analyse ${file.name}: ${err.message || err}`);
    statusEl.textContent = "";
  } finally {
    busy = false;
    drop.removeAttribute("aria-busy");
  }
}

function base64Blob(b64, type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}

fileInput.addEventListener("change", () => analyse(fileInput.files[0]));
for (const ev of ["dragenter", "dragover"]) {
  drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("dragover"); });
}
for (const ev of ["dragleave", "dragend"]) drop.addEventListener(ev, () => drop.classList.remove("dragover"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("dragover");
  const file = e.dataTransfer && e.dataTransfer.files[0];
  if (file) analyse(file);
});
opacity.addEventListener("input", () => { opacityValue.textContent = `${opacity.value}%`; render(); });
boxes.addEventListener("change", render);

$("dl-overlay").addEventListener("click", () => {
  if (!current) return;
  canvas.toBlob((blob) => blob && downloadBlob(blob, `${baseName(current.name)}-overlay.png`), "image/png");
});
$("dl-mask").addEventListener("click", () => {
  if (current && current.result.label_map) {
    downloadBlob(base64Blob(current.result.label_map.data, "image/png"), `${baseName(current.name)}-mask.png`);
  }
});
$("dl-color").addEventListener("click", () => {
  if (current && current.maskCanvas) {
    current.maskCanvas.toBlob((blob) => blob && downloadBlob(blob, `${baseName(current.name)}-mask-colour.png`), "image/png");
  }
});
$("dl-json").addEventListener("click", () => {
  if (!current) return;
  const { label_map: _lm, overlay: _ov, ...rest } = current.result; // images stay in their own downloads
  downloadBlob(new Blob([JSON.stringify(rest, null, 2)], { type: "application/json" }), `${baseName(current.name)}.json`);
});
