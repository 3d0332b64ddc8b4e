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

start().catch((e) => { $("status").textContent = "cannot reach the Pi: " + e; });
