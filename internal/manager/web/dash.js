// Shoal dashboard: polls the manager's JSON API (GET /v1/dashboard every
// 1.5 s, GET /v1/history every few seconds) and draws by hand: no
// framework, no external resources. Admin actions go through the ordinary
// admin API with the token from the page (sessionStorage) as
// "Authorization: Bearer <token>".
"use strict";

const POLL_MS = 1500;
const HISTORY_MS = 5000;
const NSLOTS = 16384, COLS = 128, CELL = 4;
const PALETTE = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#39c5cf", "#ff7b72", "#8b949e", "#e3b341", "#56d364"];

let last = null;      // the last /v1/dashboard reply
let history = null;   // the last /v1/history reply
let slotOwner = new Uint16Array(NSLOTS);
let slotOps = new Float64Array(NSLOTS);
let slotTo = new Map(); // moving slot -> target shard
// While a mouse button is down the tables are not rebuilt: a row replaced
// between press and release would swallow the click on its button.
let pointerDown = false;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : String(k));
  }
  return e;
}

function shardColor(id) { return PALETTE[(id - 1 + PALETTE.length) % PALETTE.length]; }

function fmtNum(v) {
  if (v === null || v === undefined || isNaN(v)) return "-";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (a >= 100 || v === Math.round(v)) return String(Math.round(v));
  return v.toFixed(1);
}

function fmtBytes(v) {
  if (!v) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : String(v)) + " " + u[i];
}

function fmtTime(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], { hour12: false });
}

function fmtAgo(ms) {
  if (ms < 0) return "never";
  if (ms < 1000) return ms + " ms ago";
  return (ms / 1000).toFixed(1) + " s ago";
}

// ---- talking to the manager -------------------------------------------

function token() { return sessionStorage.getItem("shoal-admin-token") || ""; }

async function api(method, path, body) {
  const headers = {};
  const tok = token();
  if (tok) headers["Authorization"] = "Bearer " + tok;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // Reads give up after 5 s (the next poll tries again); actions may
  // take long (a failover waits for the replica to catch up).
  const signal = method === "GET" ? AbortSignal.timeout(5000) : undefined;
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", signal });
  let data = null;
  const text = await resp.text();
  try { data = JSON.parse(text); } catch (e) { data = { error: text.trim() }; }
  if (!resp.ok) {
    const msg = (data && data.error) || resp.statusText;
    throw new Error(resp.status + ": " + msg + (resp.status === 401 || resp.status === 403 ? " (check the admin token)" : ""));
  }
  return data;
}

function message(text, isError) {
  const m = $("message");
  m.textContent = text;
  m.className = "message" + (isError ? " error" : "");
  m.hidden = false;
}

// ---- polling --------------------------------------------------------------

async function poll() {
  try {
    last = await api("GET", "/v1/dashboard");
    $("conn").textContent = "";
    render(last);
  } catch (e) {
    $("conn").textContent = "cannot reach the manager: " + e.message;
  }
  setTimeout(poll, POLL_MS);
}

async function pollHistory() {
  try {
    history = await api("GET", "/v1/history");
    drawCharts();
  } catch (e) {
    $("conn").textContent = "cannot read the history: " + e.message;
  }
  setTimeout(pollHistory, HISTORY_MS);
}

// ---- rendering ------------------------------------------------------------

function render(d) {
  const st = d.status;
  const h = $("health");
  h.textContent = st.healthy ? "healthy" : "degraded";
  h.className = "badge " + (st.healthy ? "ok" : "bad");
  $("epoch").textContent = st.epoch;
  $("leader").textContent = st.leader + (st.managers && st.managers[st.leader] ? " (" + st.managers[st.leader] + ")" : "");
  $("updated").textContent = fmtTime(d.time);

  const nodes = st.nodes || [];
  const byID = new Map(nodes.map((n) => [n.id, n]));
  const pending = (d.moves || []).reduce((a, g) => a + g.copying + g.cutover + g.paused, 0);
  $("sum-shards").textContent = st.shards.length;
  $("sum-nodes").textContent = nodes.length;
  $("sum-alive").textContent = nodes.filter((n) => n.alive).length;
  $("sum-standby").textContent = (st.standby || []).length;
  $("sum-ops").textContent = fmtNum(nodes.reduce((a, n) => a + (n.alive ? n.ops_per_sec : 0), 0));
  $("sum-mem").textContent = fmtBytes(nodes.reduce((a, n) => a + (n.alive ? n.used_memory : 0), 0));
  $("sum-unowned").textContent = st.unassigned_slots;
  $("sum-moves").textContent = pending;

  if (!pointerDown) {
    renderShards(st, byID);
    renderNodes(nodes);
  }
  renderHeat(d, st);
  renderMoves(d.moves || []);
  renderFailovers(st.failovers || [], byID);
  renderDecisions(d.autoscale || [], st.autoscale);
}

function addr(byID, id) { const n = byID.get(id); return n ? n.addr : id; }

function renderShards(st, byID) {
  const tb = $("shards").tBodies[0];
  tb.replaceChildren();
  for (const s of st.shards) {
    let ops = 0;
    for (const id of [s.primary_id, ...s.replica_ids]) {
      const n = byID.get(id);
      if (n && n.alive) ops += n.ops_per_sec;
    }
    const p = byID.get(s.primary_id);
    const reps = el("td", { class: "replicas" });
    if (s.replica_ids.length === 0) reps.append(el("span", { class: "lag" }, "none"));
    s.replica_ids.forEach((id, i) => {
      const lag = s.lag[id];
      const n = byID.get(id);
      reps.append(el("div", { class: "replica" + (n && n.alive ? "" : " bad") }, s.replicas[i],
        el("span", { class: "lag" }, " (" + (lag < 0 ? "not heard from" : "lag " + lag) + (n && n.alive && !n.synced ? ", syncing" : "") + ")")));
    });
    const state = s.healthy ? "healthy" : (s.state || "unhealthy");
    tb.append(el("tr", { class: "shard" + (s.healthy ? "" : " down"), "data-shard": s.id },
      el("td", {}, el("span", { class: "dot", style: "color:" + shardColor(s.id) }, "■ "), s.id),
      el("td", { class: "state " + (s.healthy ? "ok" : "bad") }, state + (s.draining ? " (draining)" : "")),
      el("td", { class: "primary" + (p && p.alive ? "" : " bad") }, s.primary || "-"),
      reps,
      el("td", { class: "slots num" }, s.slots),
      el("td", { class: "num" }, s.weight),
      el("td", { class: "num" }, s.epoch),
      el("td", { class: "num" }, fmtNum(ops)),
      el("td", { class: "num" }, fmtBytes(p && p.alive ? p.used_memory : 0)),
      el("td", {},
        el("button", { class: "failover", onclick: () => askFailover(s) }, "Failover…"), " ",
        el("button", { class: "drain", onclick: () => askDrain(s) }, "Drain…"))));
  }
}

function renderNodes(nodes) {
  const tb = $("nodes").tBodies[0];
  tb.replaceChildren();
  for (const n of nodes) {
    tb.append(el("tr", { class: "node" + (n.alive ? "" : " down"), "data-node": n.id },
      el("td", {}, n.id),
      el("td", {}, n.addr),
      el("td", { class: "role" }, n.role || n.state),
      el("td", { class: "num" }, n.shard || "-"),
      el("td", { class: n.alive ? "ok" : "bad" }, n.alive ? "yes" : "no"),
      el("td", {}, fmtAgo(n.last_seen_ms)),
      el("td", { class: "num" }, n.offset),
      el("td", { class: "num" }, fmtNum(n.ops_per_sec)),
      el("td", { class: "num" }, fmtBytes(n.used_memory)),
      el("td", { class: "num" }, n.keys)));
  }
}

// heatColor maps t in [0, 1] onto the legend's gradient.
const STOPS = [[0x1d, 0x2b, 0x53], [0x2e, 0x6f, 0xbf], [0xf2, 0xc7, 0x44], [0xe8, 0x55, 0x2b], [0xff, 0x20, 0x20]];
function heatColor(t) {
  t = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
  const i = Math.min(Math.floor(t), STOPS.length - 2), f = t - i;
  const a = STOPS[i], b = STOPS[i + 1];
  return "rgb(" + [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k]))).join(",") + ")";
}

function renderHeat(d, st) {
  for (const [first, lastSlot, shard, ops] of d.heat) {
    for (let s = first; s <= lastSlot; s++) { slotOwner[s] = shard; slotOps[s] = ops; }
  }
  slotTo = new Map((d.migrating || []).map(([s, to]) => [s, to]));
  let max = 0;
  for (let s = 0; s < NSLOTS; s++) max = Math.max(max, slotOps[s]);
  $("heat-max").textContent = "0 – " + fmtNum(max);
  const c = $("heat").getContext("2d");
  const lmax = Math.log1p(max);
  for (let s = 0; s < NSLOTS; s++) {
    const x = (s % COLS) * CELL, y = Math.floor(s / COLS) * CELL;
    if (slotOwner[s] === 0) c.fillStyle = "#000";
    else if (slotOps[s] < 0) c.fillStyle = "#3a3f47";
    else c.fillStyle = heatColor(lmax > 0 ? Math.log1p(slotOps[s]) / lmax : 0);
    c.fillRect(x, y, CELL, CELL);
  }
  // Shard boundaries: a line between cells of different owners.
  c.fillStyle = "#e8edf2";
  for (let s = 0; s < NSLOTS; s++) {
    const x = (s % COLS) * CELL, y = Math.floor(s / COLS) * CELL;
    if (s % COLS !== COLS - 1 && slotOwner[s + 1] !== slotOwner[s]) c.fillRect(x + CELL - 1, y, 1, CELL);
    if (s + COLS < NSLOTS && slotOwner[s + COLS] !== slotOwner[s]) c.fillRect(x, y + CELL - 1, CELL, 1);
  }
  c.fillStyle = "#fff";
  for (const s of slotTo.keys()) {
    c.fillRect((s % COLS) * CELL + 1, Math.floor(s / COLS) * CELL + 1, 2, 2);
  }
}

function heatHover(ev) {
  if (!last) return;
  const r = $("heat").getBoundingClientRect();
  const col = Math.floor((ev.clientX - r.left) / CELL), row = Math.floor((ev.clientY - r.top) / CELL);
  const tip = $("heat-tip");
  if (col < 0 || col >= COLS || row < 0 || row >= NSLOTS / COLS) { tip.hidden = true; return; }
  const s = row * COLS + col, owner = slotOwner[s];
  const sh = last.status.shards.find((x) => x.id === owner);
  let text = "slot " + s + " · " + (owner ? "shard " + owner + (sh ? " (primary " + sh.primary + ")" : "") : "unassigned");
  text += " · " + (slotOps[s] < 0 ? "load unknown" : fmtNum(slotOps[s]) + " ops/s");
  if (slotTo.has(s)) text += " · moving to shard " + slotTo.get(s);
  tip.textContent = text;
  tip.style.left = Math.min(col * CELL + 12, 300) + "px";
  tip.style.top = (row * CELL + 12) + "px";
  tip.hidden = false;
}

function renderMoves(groups) {
  const box = $("moves");
  box.replaceChildren();
  if (groups.length === 0) { box.append(el("div", { class: "empty" }, "No slot moves in progress.")); return; }
  for (const g of groups) {
    const pct = g.total > 0 ? Math.round(100 * g.done / g.total) : 0;
    const bar = el("div", { style: "width:" + pct + "%" });
    box.append(el("div", { class: "move", "data-from": g.from, "data-to": g.to },
      el("b", {}, "shard " + g.from + " → shard " + g.to), " ",
      el("span", { class: "count" }, g.done + " / " + g.total + " slots (" + pct + "%)"),
      el("div", { class: "bar" }, bar),
      el("span", { class: "lag" }, g.copying + " copying, " + g.cutover + " in cutover, " + g.paused + " paused" + (g.retried ? ", " + g.retried + " retried" : "")),
      g.last_error ? el("div", { class: "bad" }, "last error: " + g.last_error) : null));
  }
}

function renderFailovers(fs, byID) {
  const tb = $("failovers").tBodies[0];
  tb.replaceChildren();
  if (fs.length === 0) tb.append(el("tr", {}, el("td", { colspan: 5, class: "empty" }, "No failovers since this manager became leader.")));
  for (const f of fs.slice().reverse().slice(0, 20)) {
    tb.append(el("tr", { class: "failover", "data-shard": f.shard },
      el("td", {}, fmtTime(f.time)), el("td", { class: "num" }, f.shard),
      el("td", {}, f.from + " → " + f.to + " (" + addr(byID, f.to) + ")"),
      el("td", { class: "num" }, f.epoch), el("td", {}, f.reason)));
  }
}

function renderDecisions(ds, summary) {
  $("autoscale-state").textContent = summary ? (summary.enabled ? "enabled" : "off") + (summary.reason ? " · " + summary.reason : "") : "";
  const tb = $("decisions").tBodies[0];
  tb.replaceChildren();
  if (ds.length === 0) tb.append(el("tr", {}, el("td", { colspan: 5, class: "empty" }, "No decisions yet.")));
  for (const d of ds.slice().reverse()) {
    tb.append(el("tr", { class: "decision" },
      el("td", {}, fmtTime(d.time)), el("td", {}, d.action + (d.kind ? " (" + d.kind + ")" : "")),
      el("td", { class: "num" }, d.shard || "-"), el("td", { class: "num" }, d.moves || "-"),
      el("td", {}, d.reason, d.error ? el("div", { class: "bad" }, "error: " + d.error) : null)));
  }
}

// ---- charts ---------------------------------------------------------------

function drawCharts() {
  const samples = (history && history.samples) || [];
  const shards = new Set();
  for (const s of samples) for (const x of s.shards) shards.add(x.shard);
  const ids = [...shards].sort((a, b) => a - b);
  const span = history ? history.interval_ms * history.capacity : 3600e3;
  $("hist-span").textContent = "last " + Math.round(span / 60000) + " min, one sample every " + (history ? history.interval_ms / 1000 : 10) + " s";
  drawChart($("chart-ops"), samples, ids, span, (x) => x.ops_per_sec, fmtNum);
  drawChart($("chart-mem"), samples, ids, span, (x) => x.used_memory, fmtBytes);
  const lg = $("chart-legend");
  lg.replaceChildren();
  for (const id of ids) lg.append(el("span", { class: "sw", style: "background:" + shardColor(id) }), "shard " + id);
}

function drawChart(cv, samples, ids, span, value, fmt) {
  const c = cv.getContext("2d"), W = cv.width, H = cv.height;
  const L = 64, R = 10, T = 10, B = 22;
  c.clearRect(0, 0, W, H);
  const end = samples.length ? Date.parse(samples[samples.length - 1].time) : Date.now();
  const start = end - span;
  let max = 0;
  for (const s of samples) for (const x of s.shards) max = Math.max(max, value(x));
  max = max > 0 ? max * 1.1 : 1;
  const X = (t) => L + (W - L - R) * (t - start) / span;
  const Y = (v) => T + (H - T - B) * (1 - v / max);
  c.strokeStyle = "#2a3443"; c.fillStyle = "#8a97a8"; c.font = "11px system-ui, sans-serif"; c.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, y = Math.round(Y(v)) + 0.5;
    c.beginPath(); c.moveTo(L, y); c.lineTo(W - R, y); c.stroke();
    c.textAlign = "right"; c.fillText(fmt(v), L - 6, y + 4);
  }
  c.textAlign = "center";
  for (let i = 0; i <= 4; i++) {
    const t = start + span * i / 4;
    const ago = (end - t) / 1000;
    const label = ago < 1 ? "now" : span <= 600e3 ? "-" + Math.round(ago) + " s" : "-" + Math.round(ago / 60) + " min";
    c.fillText(label, X(t), H - 6);
  }
  if (samples.length === 0) { c.fillText("no samples yet", (L + W) / 2, H / 2); return; }
  c.lineWidth = 1.5;
  for (const id of ids) {
    c.strokeStyle = shardColor(id);
    c.beginPath();
    let pen = false;
    for (const s of samples) {
      const x = s.shards.find((y) => y.shard === id);
      if (!x) { pen = false; continue; }
      const px = X(Date.parse(s.time)), py = Y(value(x));
      if (pen) c.lineTo(px, py); else c.moveTo(px, py);
      pen = true;
    }
    c.stroke();
  }
}

// ---- operator actions -------------------------------------------------------

// confirm shows the dialog; ok runs when the operator confirms.
function confirmAction(title, body, okLabel, ok) {
  const dlg = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-body").replaceChildren(...body);
  const btn = $("confirm-ok");
  btn.textContent = okLabel;
  btn.hidden = !ok;
  dlg.onclose = () => {
    if (dlg.returnValue === "ok" && ok) ok();
  };
  dlg.returnValue = "";
  dlg.showModal();
}

function planBody(plan) {
  const by = new Map();
  // cluster.Move has no JSON tags: its fields are Slot, From, To, Reason.
  for (const m of plan.moves || []) {
    const k = m.From + " → " + m.To;
    if (!by.has(k)) by.set(k, []);
    by.get(k).push(m.Slot);
  }
  const lines = [...by].map(([k, slots]) => "shard " + k + ": " + slots.length + " slots (" + slots.slice(0, 12).join(", ") + (slots.length > 12 ? ", …" : "") + ")");
  return [el("p", { class: "reason" }, plan.reason),
    el("p", {}, el("b", { class: "plan-moves" }, (plan.moves || []).length), " slot moves planned"),
    lines.length ? el("pre", { class: "plan" }, lines.join("\n")) : null].filter((x) => x);
}

async function askRebalance() {
  let plan;
  try {
    plan = await api("POST", "/v1/rebalance", { dry_run: true });
  } catch (e) { message("rebalance plan failed: " + e.message, true); return; }
  const n = (plan.moves || []).length;
  confirmAction("Rebalance: the plan (dry run)", planBody(plan).concat(n ? [el("p", { class: "lag" }, "Apply plans again from the load at that moment and queues the moves.")] : []),
    "Apply rebalance", n ? async () => {
      try {
        const r = await api("POST", "/v1/rebalance", { dry_run: false });
        message("Rebalance queued " + (r.moves || []).length + " slot moves: " + r.reason);
      } catch (e) { message("rebalance failed: " + e.message, true); }
    } : null);
}

async function askDrain(s) {
  let plan;
  try {
    plan = await api("POST", "/v1/shards/" + s.id + "/drain", { dry_run: true });
  } catch (e) { message("drain plan failed: " + e.message, true); return; }
  confirmAction("Drain shard " + s.id + "?", planBody(plan).concat([el("p", {}, "The shard is marked draining; when its slots are gone its nodes go back to the standby pool.")]),
    "Drain shard " + s.id, async () => {
      try {
        const r = await api("POST", "/v1/shards/" + s.id + "/drain", { dry_run: false });
        message("Draining shard " + s.id + ": " + (r.moves || []).length + " slot moves queued.");
      } catch (e) { message("drain failed: " + e.message, true); }
    });
}

function askFailover(s) {
  confirmAction("Fail over shard " + s.id + "?",
    [el("p", {}, "The primary " + s.primary + " is fenced (stops writes), its most advanced synced replica catches up with it and becomes primary. Writes to the shard pause meanwhile; nothing acknowledged is lost."),
      el("p", {}, "Replicas: " + (s.replicas.length ? s.replicas.join(", ") : "none (the failover will be refused)"))],
    "Fail over shard " + s.id, async () => {
      message("Failing over shard " + s.id + "…");
      try {
        const r = await api("POST", "/v1/shards/" + s.id + "/failover");
        message("Shard " + s.id + " failed over: the primary is now " + r.primary + " (" + r.primary_addr + ").");
      } catch (e) { message("failover of shard " + s.id + " failed: " + e.message, true); }
    });
}

// ---- start ------------------------------------------------------------------

$("token").value = token();
$("token").addEventListener("change", (e) => {
  const v = e.target.value.trim();
  if (v) sessionStorage.setItem("shoal-admin-token", v); else sessionStorage.removeItem("shoal-admin-token");
});
$("rebalance").addEventListener("click", askRebalance);
document.addEventListener("pointerdown", () => { pointerDown = true; }, true);
document.addEventListener("pointerup", () => { pointerDown = false; }, true);
document.addEventListener("pointercancel", () => { pointerDown = false; }, true);
$("heat").addEventListener("mousemove", heatHover);
$("heat").addEventListener("mouseleave", () => { $("heat-tip").hidden = true; });
drawCharts();
poll();
pollHistory();
