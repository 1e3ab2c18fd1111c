// The driver's display: renders the pictures `vigie display` pushes (Server-Sent Events, vigie.display/1).
// The server decides every level; this file only draws them, keeps its own watchdog on the stream, and chimes.
"use strict";

const STALE_MS = 3000; // the server pushes at least twice a second: 3 s without a picture and the page is lost
const CHIME_GAP_MS = 1000; // at most one chime per side per second
const WORDS = { clear: "CLEAR", info: "PERSON", warning: "WARNING", unknown: "NO DATA" };

const params = new URLSearchParams(location.search);
const forcedTheme = ["day", "night"].includes(params.get("theme")) ? params.get("theme") : null;
const root = document.documentElement;
const now = () => performance.timeOrigin + performance.now(); // epoch ms, sub-millisecond

// What tests and the latency benchmark read: chimes played, and (with ?trace) publish → DOM times.
window.vigie = { chimes: [], trace: params.has("trace") ? [] : null };

let streamOpen = false;
let lastPicture = 0;
let lastLevels = {};
const lastChime = {};
let audio = null;

function setConnection(state, why) {
  if (root.dataset.connection !== state) {
    root.dataset.connection = state;
    root.dataset.connectionSince = String(now());
  }
  setText(document.getElementById("lost-why"), why);
}

// Only what changed is written: an unchanged page is not laid out or painted again twice a second.
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setData(el, key, value) {
  if (el.dataset[key] !== value) el.dataset[key] = value;
}

function describe(side) {
  const parts = [];
  if (side.people > 0) parts.push(side.people === 1 ? "1 person" : `${side.people} people`);
  if (side.nearest_m !== null) parts.push(`${side.nearest_m.toFixed(1)} m`);
  return parts.join(" · ");
}

function drawSide(side) {
  const el = document.getElementById(`side-${side.side}`);
  setData(el, "level", side.level);
  setData(el, "health", side.health);
  setText(el.querySelector(".word"), side.health === "none" ? "NO CAMERA" : WORDS[side.level]);
  setText(el.querySelector(".detail"), describe(side));
  setText(el.querySelector(".side-banner"), side.banners.map((b) => b.text).join(" · "));
}

let shownBanners = "";

function drawBanners(banners) {
  const key = JSON.stringify(banners.map((b) => [b.kind, b.text]));
  if (key === shownBanners) return;
  shownBanners = key;
  const box = document.getElementById("banners");
  box.replaceChildren(
    ...banners.map((b) => {
      const div = document.createElement("div");
      div.className = "banner";
      div.dataset.banner = b.kind;
      div.textContent = b.text;
      return div;
    }),
  );
}

function drawDiag(picture) {
  const ignored = Object.values(picture.ignored).reduce((a, b) => a + b, 0);
  const diag = document.getElementById("diag");
  setData(diag, "ignored", String(ignored));
  const parts = [`bus ${picture.bus_id}`];
  if (ignored > 0) {
    const which = Object.entries(picture.ignored).filter(([, n]) => n > 0);
    parts.push(`ignored ${ignored} (${which.map(([k, n]) => `${k} ${n}`).join(", ")})`);
  }
  setText(diag, parts.join(" · "));
  setText(document.getElementById("bus-id"), picture.bus_id);
}

function render(picture) {
  setData(root, "theme", forcedTheme || picture.theme);
  const changed = picture.sides.some((side) => lastLevels[side.side] !== side.level);
  for (const side of picture.sides) {
    drawSide(side);
    if (side.level === "warning" && lastLevels[side.side] !== "warning") chime(side.side);
    lastLevels[side.side] = side.level;
  }
  drawBanners(picture.banners);
  drawDiag(picture);
  if (picture.connection === "live" && streamOpen) setConnection("live", "");
  else setConnection("lost", picture.banners.length ? picture.banners[0].text : "blind-spot alerts unavailable");
  lastPicture = now(); // only once drawn: a picture this page cannot draw leaves the watchdog running
  if (window.vigie.trace && picture.sent_ts !== null) {
    // [published, pushed by the bridge, in the DOM, a level changed (1/0), next frame drawn]: times in epoch ms
    const entry = [picture.sent_ts * 1000, picture.pushed_ts * 1000, now(), changed ? 1 : 0];
    window.vigie.trace.push(entry);
    requestAnimationFrame(() => entry.push(now()));
  }
}

// Nothing on screen may outlive the data behind it: lost means every side is unknown.
function lose(why) {
  for (const el of document.querySelectorAll(".side")) {
    setData(el, "level", "unknown");
    setData(el, "health", "unknown");
    setText(el.querySelector(".word"), WORDS.unknown);
    setText(el.querySelector(".detail"), "");
    setText(el.querySelector(".side-banner"), "");
  }
  lastLevels = {};
  drawBanners([{ kind: "connection", text: why }]);
  setConnection("lost", why);
}

// A generated two-tone chime (Web Audio): no sound file to load.
function chime(side) {
  const t = now();
  if (t - (lastChime[side] ?? -Infinity) < CHIME_GAP_MS) return;
  lastChime[side] = t;
  window.vigie.chimes.push({ side, t });
  if (window.vigie.chimes.length > 100) window.vigie.chimes.shift();
  if (!audio || audio.state !== "running") return;
  const start = audio.currentTime;
  const gain = audio.createGain();
  gain.connect(audio.destination);
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(0.5, start + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.35);
  [880, 1320].forEach((hz, i) => {
    const osc = audio.createOscillator();
    osc.frequency.value = hz;
    osc.connect(gain);
    osc.start(start + i * 0.12);
    osc.stop(start + 0.12 + i * 0.23);
  });
}

// Browsers start sound only after a touch unless the kiosk allows it (--autoplay-policy=no-user-gesture-required).
function setupSound() {
  const button = document.getElementById("sound");
  const update = () => {
    const on = audio && audio.state === "running";
    root.dataset.sound = on ? "on" : "off";
    button.hidden = Boolean(on);
  };
  try {
    audio = new AudioContext();
    audio.onstatechange = update;
  } catch (e) {
    audio = null;
  }
  const wake = () => audio && audio.resume().then(update);
  button.addEventListener("click", wake);
  document.addEventListener("pointerdown", wake);
  update();
}

function connect() {
  const stream = new EventSource("events");
  stream.onopen = () => {
    streamOpen = true;
  };
  stream.onmessage = (event) => {
    streamOpen = true;
    render(JSON.parse(event.data));
  };
  stream.onerror = () => {
    streamOpen = false;
    lose("The display lost its connection to vigie: blind-spot alerts unavailable");
    if (stream.readyState === EventSource.CLOSED) setTimeout(connect, 1000); // refused: try again ourselves
  };
}

setInterval(() => {
  if (now() - lastPicture > STALE_MS && root.dataset.connection === "live") {
    lose("The display hears nothing from vigie: blind-spot alerts unavailable");
  }
}, 250);

// The warning's edge blinks: two style changes a second, rather than an animation repainted every frame.
setInterval(() => {
  root.dataset.blink = root.dataset.blink === "on" ? "off" : "on";
}, 500);

if (forcedTheme) root.dataset.theme = forcedTheme;
setupSound();
connect();
