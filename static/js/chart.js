// A small canvas line chart of deepfake confidence over time, one line per person (no library).
// series: [{id, label, color, points: [[t, p_fake]], framePoints: [[t, frame_p_fake]]}]
// Running confidences are lines; single-frame scores are faint dots behind them.

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function drawChart(canvas, series, { duration = 0 } = {}) {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 600;
  const cssH = canvas.clientHeight || 260;
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);

  const text = cssVar("--muted", "#555");
  const grid = cssVar("--border", "#ccc");
  const danger = cssVar("--danger", "#b00");
  const pad = { l: 44, r: 20, t: 12, b: 28 };
  const w = Math.max(10, cssW - pad.l - pad.r);
  const h = Math.max(10, cssH - pad.t - pad.b);
  let tMax = duration || 0;
  for (const s of series) {
    for (const [t] of s.points) tMax = Math.max(tMax, t);
    for (const [t] of s.framePoints || []) tMax = Math.max(tMax, t);
  }
  tMax = Math.max(tMax, 1);
  const x = (t) => pad.l + (t / tMax) * w;
  const y = (p) => pad.t + (1 - p) * h;

  ctx.font = "12px system-ui, sans-serif";
  ctx.lineWidth = 1;
  ctx.strokeStyle = grid;
  ctx.fillStyle = text;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    ctx.beginPath();
    ctx.moveTo(pad.l, y(p));
    ctx.lineTo(pad.l + w, y(p));
    ctx.stroke();
    ctx.fillText(`${Math.round(p * 100)}%`, pad.l - 6, y(p));
  }
  // the decision line
  ctx.save();
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = danger;
  ctx.beginPath();
  ctx.moveTo(pad.l, y(0.5));
  ctx.lineTo(pad.l + w, y(0.5));
  ctx.stroke();
  ctx.restore();

  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const step = niceStep(tMax, Math.max(2, Math.floor(w / 64)));
  for (let t = 0; t <= tMax + 1e-9; t += step) ctx.fillText(`${formatT(t)} s`, x(t), pad.t + h + 6);

  const scored = series.some((s) => s.points.some((p) => p[1] !== null && p[1] !== undefined)
    || (s.framePoints || []).some((p) => p[1] !== null && p[1] !== undefined));
  if (!scored) {
    ctx.fillStyle = text;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.font = "14px system-ui, sans-serif";
    ctx.fillText(series.length ? "No deepfake scores yet: still collecting evidence" : "No results yet", pad.l + w / 2, pad.t + h / 4);
  }
  for (const s of series) {
    ctx.fillStyle = s.color;
    ctx.globalAlpha = 0.35;
    for (const [t, p] of s.framePoints || []) {
      if (p === null || p === undefined) continue;
      ctx.beginPath();
      ctx.arc(x(t), y(p), 2, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    let started = false;
    for (const [t, p] of s.points) {
      if (p === null || p === undefined) { started = false; continue; }
      if (!started) { ctx.moveTo(x(t), y(p)); started = true; } else ctx.lineTo(x(t), y(p));
    }
    ctx.stroke();
    if (s.points.length === 1 && s.points[0][1] !== null) {
      ctx.beginPath();
      ctx.arc(x(s.points[0][0]), y(s.points[0][1]), 3, 0, Math.PI * 2);
      ctx.fill();
    }
  }
}

function niceStep(tMax, maxTicks) {
  for (const s of [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (tMax / s <= maxTicks) return s;
  return Math.ceil(tMax / maxTicks);
}

function formatT(t) {
  return Number.isInteger(t) ? String(t) : t.toFixed(1);
}
