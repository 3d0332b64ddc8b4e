// The mnist-edge page: live stream and readings from the Pi, photo upload and a drawing
// canvas classified on the Pi. No framework, nothing fetched from elsewhere.
"use strict";
const token = new URLSearchParams(location.search).get("token");
const withToken = (url) => token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
const $ = (id) => document.getElementById(id);

function describe(r) {
  if (r.number) return { big: r.number, small: `${r.digits.length} digits` };
  if (r.digit === null || r.digit === undefined) {
    return { big: "–", small: r.none_reason ? `no digit (${r.none_reason})` : "no digit" };
  }
  return { big: String(r.digit), small: `${(100 * r.confidence).toFixed(1)}% sure` };
}

let heard = Date.now();  // when the server last said the reading is current (any event)

function ago(ms) {
  const s = Math.round(ms / 1000);
  return s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

function showAge() {  // a stale reading says how old it is, every second
  const stale = document.body.classList.contains("offline") || document.body.classList.contains("stale");
  $("age").textContent = stale && $("digit").textContent !== "–" ? `from ${ago(Date.now() - heard)} ago` : "";
}
setInterval(showAge, 1000);

const SETTLE_MS = 2000;  // a screen reader hears a reading once it has held this long
let announceTimer = null;

function announce(big) {  // settled changes only: not every flicker of the live reading
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    const said = big === "–" ? "no digit" : big;
    if ($("digit").textContent === big && $("announce").textContent !== said) $("announce").textContent = said;
  }, SETTLE_MS);
}

function showCurrent(r) {  // the big digit beside the stream
  heard = Date.now();
  const d = describe(r);
  $("digit").textContent = d.big;
  $("confidence").textContent = d.small;
  if (r.fps !== undefined) $("fps").textContent = `${r.fps.toFixed(1)} frames/s`;
  announce(d.big);
  return d;
}

let collecting = false;  // serve --collect: any reading can be corrected and kept

function correctionPad(example, target) {  // "wrong? tap the right digit"
  if (!collecting || !example) return;
  const kept = target.querySelector(".correct:not([data-saved])");
  if (kept) { kept.dataset.example = example; return; }  // the same buttons: focus stays where it is
  target.querySelectorAll(".correct").forEach((old) => old.remove());
  const pad = document.createElement("div");
  pad.className = "correct";
  pad.dataset.example = example;
  const ask = document.createElement("span");
  ask.textContent = "wrong? tap the right digit:";
  pad.append(ask);
  [..."0123456789", "none"].forEach((label) => {
    const b = document.createElement("button");
    b.textContent = label === "none" ? "no digit" : label;
    b.dataset.label = label;
    b.addEventListener("click", async () => {
      const res = await fetch(withToken("api/correct"), {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ example: pad.dataset.example, label }) });
      const r = await res.json().catch(() => ({}));
      pad.textContent = res.ok ? `kept as ${b.textContent}: thank you` : (r.error || `error ${res.status}`);
      pad.dataset.saved = res.ok ? label : "";  // a saved pad stays as it is; the next reading gets new buttons
    });
    pad.append(b);
  });
  target.append(pad);
}

function showReading(r) {
  const d = showCurrent(r);
  if (r.example) correctionPad(r.example, $("camera-correct"));
  const li = document.createElement("li");
  const when = new Date(1000 * r.time).toLocaleTimeString();
  li.innerHTML = "";
  const b = document.createElement("b"); b.textContent = d.big;
  const small = document.createElement("small"); small.textContent = " " + when;
  li.append(b, small);
  li.title = `${when} · frame ${r.frame}`;
  $("history").prepend(li);
  while ($("history").children.length > 20) $("history").lastChild.remove();
}

const TOKEN_HELP = "token missing or changed (the server restarted?): open the URL mnist-edge serve printed";

function showStream(on) {  // the stream, or why there is none
  const was = !$("stream").hidden;
  $("stream").hidden = !on;
  if (on) { $("nocamera").hidden = true; $("camera-down").hidden = true; }
  if (on && !was) $("stream").src = withToken("api/stream.mjpg?t=" + Date.now());
}

function showCamera(s) {  // the status event, at least every 5 s
  document.body.classList.toggle("stale", !s.camera_alive && s.camera_error !== null);
  if (s.camera_alive) {
    heard = Date.now();
    showStream(true);  // a camera that came back: its stream, whatever the page showed before
    $("status").textContent = `camera live, ${s.fps.toFixed(1)} frames/s`;
    $("status").className = "muted";
  } else if (s.camera_error) {  // the server retries: a short header, the reason in the card
    $("status").textContent = "camera down, retrying";
    $("status").className = "error";
    $("status").title = s.camera_error;
    $("camera-error").textContent = `The camera is not delivering frames (${s.camera_error}).`;
    $("camera-down").hidden = false;
    $("nocamera").hidden = true;
  } else {
    $("status").textContent = "no camera";
    $("status").className = "muted";
  }
}

function restartStream() {  // a new connection: the old MJPEG response ended with the server
  if (!$("stream").hidden) $("stream").src = withToken("api/stream.mjpg?t=" + Date.now());
}

async function start() {
  const latest = await fetch(withToken("api/latest"));
  if (latest.status === 401) { $("status").textContent = TOKEN_HELP; $("status").className = "error"; return; }
  const first = await latest.json();
  collecting = Boolean(first.collect);
  $("status").textContent = first.camera_alive ? "camera live" : "no camera";
  if (!first.camera_alive && first.frame === null) { $("nocamera").hidden = false; $("stream").hidden = true; }
  else { $("stream").src = withToken("api/stream.mjpg"); }
  if (first.camera_error) showCamera(first);
  (first.history || []).slice().reverse().forEach(showReading);
  const events = new EventSource(withToken("api/events"));
  let away = false;
  events.addEventListener("reading", (e) => { showReading(JSON.parse(e.data)); });
  events.addEventListener("status", (e) => { showCamera(JSON.parse(e.data)); });
  events.onopen = () => {
    document.body.classList.remove("offline");
    showAge();
    if (away) {  // a restarted server: a new stream, and its reading rather than ours
      away = false; restartStream();
      fetch(withToken("api/latest")).then((res) => res.json()).then((r) => { if (r.frame !== null) showCurrent(r); })
        .catch(() => {});
    }
  };
  events.onerror = async () => {
    away = true;
    document.body.classList.add("offline");  // the last digit is no longer current
    showAge();
    $("status").textContent = "reconnecting…";
    try {
      const res = await fetch(withToken("api/latest"));
      if (res.status === 401) { events.close(); $("status").textContent = TOKEN_HELP; $("status").className = "error"; }
    } catch (_) { /* still away: EventSource retries by itself */ }
  };
}

const MAX_SIDE = 1600;  // a phone's 12-50 MP photo is sent at this size: the Pi reads 1,000 px

async function smaller(blob) {  // big photos are scaled in the browser before the upload
  if (!blob.type.startsWith("image/") || blob.size < 2e6 || !window.createImageBitmap) return blob;
  try {
    const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale); canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const out = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    return out ? Object.assign(out, { name: (blob.name || "photo") + ".jpg" }) : blob;
  } catch (_) { return blob; }  // not decodable here: let the Pi say why
}

const asked = { "photo-result": 0, "draw-result": 0 };  // the newest request per result: older answers are dropped

async function classifyBlob(original, target) {
  const mine = ++asked[target.id];
  target.textContent = "classifying…";
  delete target.dataset.digit;  // the previous answer no longer stands
  if (target.id === "photo-result") $("preview").hidden = true;
  if (original.size === 0) { target.textContent = "the file is empty: choose a photo"; return; }
  const blob = await smaller(original);
  if (target.id === "photo-result") {  // a preview of what was sent, once the browser can show it
    const img = $("preview");
    img.onload = () => { if (mine === asked[target.id]) img.hidden = false; };
    img.onerror = () => { img.hidden = true; };
    img.src = URL.createObjectURL(blob);
  }
  const name = blob.name || "drawing.png";
  const body = new FormData();
  body.append("file", blob, name);
  const res = await fetch(withToken("api/classify?top=3&crop=1"), { method: "POST", body });
  const r = await res.json().catch(() => ({}));
  if (mine !== asked[target.id]) return;  // cleared or replaced meanwhile: this answer is stale
  if (!res.ok) {
    const why = { 401: TOKEN_HELP, 413: "the photo is too large for this server", 503: "the Pi is busy: try again" }[res.status];
    const error = r.error || `error ${res.status}`;
    target.textContent = why || (error.startsWith(name + ": ") ? error.slice(name.length + 2) : error);
    return;
  }
  const d = describe(r);
  target.innerHTML = "";
  const strong = document.createElement("strong");
  strong.textContent = d.big;
  target.append(strong, " ", d.small);
  if (r.crop) {  // the 28x28 the model saw
    const seen = document.createElement("img");
    seen.src = r.crop; seen.className = "crop"; seen.alt = "the 28×28 image the model saw";
    seen.title = "what the model saw";
    target.append(seen);
  }
  correctionPad(r.example, target);
  target.dataset.digit = r.digit === null ? "none" : String(r.digit);
}

// Photo: file picker (a phone offers its camera) and drag-and-drop.
$("file").addEventListener("change", (e) => { if (e.target.files[0]) classifyBlob(e.target.files[0], $("photo-result")); });
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => { const f = e.dataTransfer.files[0]; if (f) classifyBlob(f, $("photo-result")); });

// Drawing: pointer events serve mouse, pen and touch alike.
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
let pause = null;  // classify when a stroke ends (after a short pause for the next one)
function clear() {  // also cancels a read that is pending or on its way
  clearTimeout(pause);
  asked["draw-result"]++;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  $("draw-result").textContent = "";
  delete $("draw-result").dataset.digit;
}
clear();
let drawing = false;
function point(e) { const b = canvas.getBoundingClientRect(); return [(e.clientX - b.left) * canvas.width / b.width, (e.clientY - b.top) * canvas.height / b.height]; }
canvas.addEventListener("pointerdown", (e) => { drawing = true; canvas.setPointerCapture(e.pointerId); ctx.beginPath(); ctx.moveTo(...point(e)); });
canvas.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#000";
  ctx.lineTo(...point(e)); ctx.stroke();
});
canvas.addEventListener("pointerup", () => {
  drawing = false;
  clearTimeout(pause);
  pause = setTimeout(() => canvas.toBlob((b) => classifyBlob(b, $("draw-result")), "image/png"), 700);
});
canvas.addEventListener("pointerdown", () => clearTimeout(pause));
$("clear").addEventListener("click", clear);
$("classify-drawing").addEventListener("click", () => canvas.toBlob((b) => classifyBlob(b, $("draw-result")), "image/png"));

// History: the readings the Pi kept (GET /api/history), drawn here: no library, works offline.
const RANGES = { "1h": 3600, "24h": 86400, "7d": 604800 };
let range = "24h";

function chartContext(canvas) {  // a canvas sharp on any screen, sized by its CSS box
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
  const c = canvas.getContext("2d");
  c.setTransform(ratio, 0, 0, ratio, 0, 0);
  c.clearRect(0, 0, w, h);
  c.font = "12px system-ui, sans-serif";
  c.fillStyle = c.strokeStyle = getComputedStyle(canvas).color;
  return [c, w, h];
}

function drawTimeline(rows, since, until) {  // each reading: a dot at its time and digit ("–": none)
  const [c, w, h] = chartContext($("timeline"));
  const left = 22, bottom = 18, top = 6, rowH = (h - top - bottom) / 11;
  const y = (r) => top + rowH * (r.digit === null ? 10.5 : 9.5 - r.digit);
  c.globalAlpha = 0.35;
  for (let d = 0; d <= 10; d++) c.fillRect(left, top + rowH * (d + 0.5), w - left, 0.5);
  c.globalAlpha = 1;
  c.textAlign = "right"; c.textBaseline = "middle";
  for (let d = 0; d <= 9; d++) c.fillText(String(d), left - 6, top + rowH * (9.5 - d));
  c.fillText("–", left - 6, top + rowH * 10.5);
  const x = (t) => left + (w - left - 4) * (t - since) / Math.max(1, until - since);
  c.textAlign = "center"; c.textBaseline = "alphabetic";
  const ticks = w < 500 ? 2 : 4;  // labels that fit
  const long = until - since > 86400;
  for (let i = 0; i <= ticks; i++) {
    const t = since + (until - since) * i / ticks;
    const when = new Date(1000 * t);
    const label = long ? when.toLocaleDateString([], { month: "short", day: "numeric" })
      : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    c.textAlign = i === 0 ? "left" : i === ticks ? "right" : "center";
    c.fillText(label, x(t), h - 4);
  }
  rows.forEach((r) => {  // sure readings solid, unsure ones faint
    c.globalAlpha = r.confidence === null ? 0.5 : 0.25 + 0.75 * r.confidence;
    c.fillStyle = r.digit === null ? "#888" : getComputedStyle(document.documentElement).getPropertyValue("--accent");
    c.beginPath(); c.arc(x(r.time), y(r), 3, 0, 2 * Math.PI); c.fill();
  });
  c.globalAlpha = 1;
}

function drawConfidence(rows) {  // how sure the readings were: ten bars, 0-100 %
  const [c, w, h] = chartContext($("confidence-chart"));
  const counts = new Array(10).fill(0);
  rows.forEach((r) => { if (r.digit !== null && r.confidence !== null) counts[Math.min(9, Math.floor(r.confidence * 10))]++; });
  const most = Math.max(1, ...counts), bottom = 18, barW = (w - 4) / 10;
  c.textAlign = "center";
  counts.forEach((n, i) => {
    const barH = (h - bottom - 14) * n / most;
    c.fillStyle = getComputedStyle(document.documentElement).getPropertyValue("--accent");
    c.fillRect(2 + i * barW + 2, h - bottom - barH, barW - 4, barH);
    c.fillStyle = getComputedStyle($("confidence-chart")).color;
    if (n) c.fillText(String(n), 2 + (i + 0.5) * barW, h - bottom - barH - 3);
    if (i % 2 === 0) c.fillText(`${i * 10}%`, 2 + i * barW + 8, h - 4);
  });
  c.fillText("100%", w - 14, h - 4);
  return counts;
}

async function showHistory() {
  const since = Math.floor(Date.now() / 1000) - RANGES[range];
  const query = `since=${RANGES[range]}s`;
  const res = await fetch(withToken(`api/history?${query}`));
  if (res.status === 404) { $("history-card").hidden = true; return; }  // serve --no-history
  if (!res.ok) { $("history-summary").textContent = `history: error ${res.status}`; return; }
  const body = await res.json();
  const rows = body.readings;
  $("history-card").hidden = false;
  $("history-card").dataset.count = String(rows.length);
  const read = rows.filter((r) => r.digit !== null || r.number);
  const sure = read.filter((r) => r.confidence !== null);
  const mean = sure.length ? sure.reduce((a, r) => a + r.confidence, 0) / sure.length : null;
  $("history-summary").textContent = rows.length
    ? `${rows.length} readings, ${(100 * (1 - read.length / rows.length)).toFixed(0)}% no digit` +
      (mean === null ? "" : `, mean confidence ${(100 * mean).toFixed(1)}%`)
    : "no readings in this time";
  $("history-csv").href = withToken(`api/history?${query}&format=csv`);
  drawTimeline(rows, since, Math.floor(Date.now() / 1000));
  drawConfidence(rows);
}

document.querySelectorAll("#history-ranges button").forEach((b) => b.addEventListener("click", () => {
  range = b.dataset.range;
  document.querySelectorAll("#history-ranges button").forEach((o) => o.setAttribute("aria-pressed", String(o === b)));
  showHistory().catch(() => {});
}));
setInterval(() => { if (!document.hidden) showHistory().catch(() => {}); }, 30000);
window.addEventListener("resize", () => showHistory().catch(() => {}));

// Unsure readings (serve --collect): a grid to label with one tap each.
async function showUnsure() {
  if (!collecting) return;
  const res = await fetch(withToken("api/unsure"));
  if (!res.ok) return;
  const { items } = await res.json();
  const grid = $("unsure-grid");
  const wanted = new Set(items.map((it) => it.id));
  grid.querySelectorAll(".tile").forEach((t) => { if (!wanted.has(t.dataset.id)) t.remove(); });
  items.slice().reverse().forEach((it) => {  // newest first, tiles kept as they are (focus stays)
    if (grid.querySelector(`.tile[data-id="${it.id}"]`)) return;
    const tile = document.createElement("div");
    tile.className = "tile"; tile.dataset.id = it.id;
    const img = document.createElement("img");
    img.src = withToken(`api/unsure/${it.id}.png`);
    img.alt = `an unsure reading: the model read ${it.read === null ? "no digit" : it.read}`;
    const said = document.createElement("div");
    said.className = "muted";
    said.textContent = (it.read === null ? "read: no digit" : `read ${it.read}`) +
      (it.confidence === null ? "" : ` (${(100 * it.confidence).toFixed(0)}%)`) +
      ` · ${new Date(1000 * it.time).toLocaleTimeString()}`;
    const labels = document.createElement("div");
    labels.className = "labels";
    [..."0123456789", "none"].forEach((label) => {
      const b = document.createElement("button");
      b.textContent = label === "none" ? "not a digit" : label;
      b.dataset.label = label;
      b.addEventListener("click", async () => {
        const r = await fetch(withToken(`api/unsure/${it.id}`), {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ label }) });
        if (r.ok) { tile.remove(); } else { said.textContent = ((await r.json().catch(() => ({}))).error) || `error ${r.status}`; }
        $("unsure-card").hidden = !grid.children.length;
      });
      labels.append(b);
    });
    tile.append(img, said, labels);
    grid.prepend(tile);
  });
  $("unsure-card").hidden = !grid.children.length;
}
setInterval(() => { if (!document.hidden) showUnsure().catch(() => {}); }, 5000);

start().then(() => { showUnsure().catch(() => {}); return showHistory(); }).catch((e) => { $("status").textContent = "cannot reach the Pi: " + e; });
