// imgstream dashboard: reads the worker's JSON API (the same one the CLI uses) and draws
// everything with the DOM and inline SVG. No framework, no build step, no CDN.
"use strict";

const KEY_STORE = "imgstream.apiKey";
const REFRESH_MS = 10000;
const PAGE_SIZE = 24;
const TIERS = ["excellent", "good", "fair", "poor"];
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  cursor: null,
  filters: {},
  cards: new Map(),   // image_id -> {stamp, node}: cards are replaced only when they change
  needsKey: false,
};

// ---------------------------------------------------------------- small helpers

// Builds elements with text content only: seller file names never reach innerHTML.
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

function fill(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children.flat().filter(Boolean));
  return node;
}

// Money as the API gives it (micro-dollar precision), at least two decimals: the page's
// numbers are the API's numbers, not a rounding of them.
function usd(value) {
  if (value === null || value === undefined) return "–";
  const fixed = Number(value).toFixed(6).replace(/0+$/, "");
  const [whole, frac = ""] = fixed.split(".");
  return "$" + whole + "." + frac.padEnd(2, "0");
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// Small shares keep a decimal: $0.03 of $25 is 0.1%, not 0%.
function percent(share) {
  const value = 100 * share;
  return `${value > 0 && value < 10 ? value.toFixed(1) : Math.round(value)}%`;
}

function score(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(1);
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString();
}

function tierBadge(tier) {
  return tier ? h("span", {class: `badge ${tier}`, text: tier}) : h("span", {class: "badge", text: "n/a"});
}

function empty(text) {
  return h("div", {class: "empty", text});
}

function table(headers, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", {class: cls, text: label})))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map(([value, cls]) =>
      h("td", {class: cls}, value))))));
}

// ---------------------------------------------------------------- API access

class AuthNeeded extends Error {}

function apiKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

// GET/POST the API with the stored key. A 401/403 shows the key field; other errors
// carry the API's {"error", "message"} text.
async function api(path, {allowError = false} = {}) {
  const headers = {Accept: "application/json"};
  if (apiKey()) headers["X-API-Key"] = apiKey();
  const response = await fetch(path, {headers});
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (response.status === 401 || response.status === 403) {
    const what = (body && (body.message || body.reason)) || "an API key is required";
    showKeyBox(apiKey() ? `The stored key was refused here: ${what}.`
                        : "This worker requires an API key (an admin key shows every panel).");
    throw new AuthNeeded(what);
  }
  if (!response.ok && !allowError) {
    const what = body && (body.message || body.reason || body.error);
    throw new Error(`${path}: HTTP ${response.status}${what ? ": " + what : ""}`);
  }
  return body;
}

function showKeyBox(message) {
  state.needsKey = true;
  const box = document.getElementById("keybox");
  box.hidden = false;
  document.getElementById("key-message").textContent = message;
}

function panelError(id, error) {
  if (error instanceof AuthNeeded) {
    fill(id, empty(`Needs a key with access to this panel: ${error.message}.`));
  } else {
    fill(id, h("div", {class: "error", text: String(error.message || error)}));
  }
}

// ---------------------------------------------------------------- charts (inline SVG)

// Horizontal bars: rows of {label, values:[{value, color, title}]}, scaled to `max`.
function barChart(rows, {max, format = String, width = 420, rowHeight = 22, labelWidth = 130}) {
  const top = max || Math.max(1e-9, ...rows.map((r) => r.values.reduce((a, v) => a + v.value, 0)));
  const plot = width - labelWidth - 84;
  const height = rows.length * rowHeight + 4;
  const svg = s("svg", {class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img"});
  rows.forEach((row, i) => {
    const y = i * rowHeight + 2;
    svg.append(s("text", {x: labelWidth - 8, y: y + rowHeight / 2 + 4, "text-anchor": "end",
                          text: row.label}));
    svg.append(s("rect", {x: labelWidth, y: y + 3, width: plot, height: rowHeight - 8, rx: 3,
                          fill: "#eef1f5"}));
    let x = labelWidth;
    let total = 0;
    for (const part of row.values) {
      const w = Math.max(0, (part.value / top) * plot);
      const rect = s("rect", {x, y: y + 3, width: w, height: rowHeight - 8, rx: 3, fill: part.color});
      rect.append(s("title", {text: part.title || format(part.value)}));
      svg.append(rect);
      x += w;
      total += part.value;
    }
    svg.append(s("text", {class: "value-label", x: labelWidth + plot + 6, y: y + rowHeight / 2 + 4,
                          text: row.total !== undefined ? row.total : format(total)}));
  });
  return svg;
}

// Grouped vertical bars: categories x series ({name, color, values{category: n}}).
function groupedBars(categories, series, {width = 420, height = 150} = {}) {
  const max = Math.max(1, ...series.flatMap((se) => categories.map((c) => se.values[c] || 0)));
  const left = 8, bottom = 20, top = 14;
  const group = (width - left * 2) / categories.length;
  const bar = Math.min(34, (group - 16) / series.length);
  const svg = s("svg", {class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img"});
  svg.append(s("line", {x1: left, x2: width - left, y1: height - bottom, y2: height - bottom,
                        stroke: "#d0d5dd"}));
  categories.forEach((category, ci) => {
    const start = left + ci * group + (group - bar * series.length) / 2;
    series.forEach((se, si) => {
      const value = se.values[category] || 0;
      const h_ = ((height - bottom - top) * value) / max;
      const x = start + si * bar;
      const rect = s("rect", {x: x + 2, y: height - bottom - h_, width: bar - 4, height: h_, rx: 2,
                              fill: se.color});
      rect.append(s("title", {text: `${se.name} ${category}: ${value}`}));
      svg.append(rect);
      svg.append(s("text", {class: "value-label", x: x + bar / 2, y: height - bottom - h_ - 3,
                            "text-anchor": "middle", text: String(value)}));
    });
    svg.append(s("text", {x: left + ci * group + group / 2, y: height - 5, "text-anchor": "middle",
                          text: category}));
  });
  return svg;
}

// Two series over days (mean score before and after), 0..100.
function dayLines(days, {width = 420, height = 130} = {}) {
  const left = 26, right = 8, top = 8, bottom = 20;
  const svg = s("svg", {class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img"});
  const x = (i) => left + (days.length === 1 ? (width - left - right) / 2
                                             : (i * (width - left - right)) / (days.length - 1));
  const y = (v) => top + (height - top - bottom) * (1 - v / 100);
  for (const tick of [0, 50, 100]) {
    svg.append(s("line", {x1: left, x2: width - right, y1: y(tick), y2: y(tick), stroke: "#eef1f5"}));
    svg.append(s("text", {x: left - 4, y: y(tick) + 4, "text-anchor": "end", text: String(tick)}));
  }
  for (const [key, color] of [["mean_before", "var(--before)"], ["mean_after", "var(--after)"]]) {
    const points = days.map((d, i) => [x(i), y(d[key] || 0), d]);
    if (points.length > 1) {
      svg.append(s("polyline", {points: points.map(([px, py]) => `${px},${py}`).join(" "),
                                fill: "none", stroke: color, "stroke-width": 2}));
    }
    for (const [px, py, d] of points) {
      const dot = s("circle", {cx: px, cy: py, r: 3.5, fill: color});
      dot.append(s("title", {text: `${d.day} ${key.replace("_", " ")}: ${score(d[key])}`}));
      svg.append(dot);
    }
  }
  const step = Math.max(1, Math.ceil(days.length / 6));
  days.forEach((d, i) => {
    // The first and last labels are anchored inside the plot so that they are not cut.
    const anchor = days.length > 1 && i === 0 ? "start"
      : days.length > 1 && i === days.length - 1 ? "end" : "middle";
    if (i % step === 0 || i === days.length - 1) {
      svg.append(s("text", {x: x(i), y: height - 5, "text-anchor": anchor, text: String(d.day).slice(5)}));
    }
  });
  return svg;
}

function legend(items) {
  // Colours are set through the CSSOM: the page's policy refuses inline style attributes.
  return h("div", {class: "legend"}, items.map(([label, color]) => {
    const swatch = h("i");
    swatch.style.background = color;
    return h("span", {}, swatch, label);
  }));
}

// ---------------------------------------------------------------- panels

async function loadHealth() {
  const pill = document.getElementById("health");
  try {
    const health = await api("/api/health", {allowError: true});
    const ok = health && health.status === "ok";
    pill.className = `pill ${ok ? "ok" : "bad"}`;
    pill.textContent = ok ? "healthy" : `degraded`;
    const checks = Object.entries((health && health.checks) || {});
    pill.title = checks.map(([k, v]) => `${k}: ${v}`).join("\n");
    fill("checks", checks.map(([name, value]) =>
      h("span", {class: `pill ${value === "ok" ? "ok" : "bad"}`, title: value,
                 text: value === "ok" ? name : `${name}: ${value}`})));
  } catch (error) {
    pill.className = "pill bad";
    pill.textContent = "unreachable";
  }
  // Bedrock and the object store answer on their own endpoints (latency included).
  for (const name of ["bedrock", "storage"]) {
    try {
      const check = await api(`/api/health/${name}`, {allowError: true});
      if (!check || !check.status) continue;
      const ok = check.status === "ok";
      document.getElementById("checks").append(h("span", {
        class: `pill ${ok ? "ok" : "bad"}`, title: check.detail || "",
        text: `${name}${check.latency_ms !== undefined && check.latency_ms !== null
          ? " " + Math.round(check.latency_ms) + " ms" : ""}${ok ? "" : ": " + (check.detail || "error")}`,
      }));
    } catch (error) { /* the main health check already says what is wrong */ }
  }
}

async function loadBudget() {
  let costs;
  try {
    costs = await api("/api/stats/costs");
  } catch (error) {
    panelError("budget-ops", error);
    return;
  }
  document.getElementById("budget-day").textContent =
    `${costs.day} (${costs.timezone || "UTC"})`;
  for (const node of document.querySelectorAll("[data-budget]")) {
    const value = costs[node.dataset.budget];
    node.textContent = usd(value);
    node.dataset.value = value;
  }
  const cap = Math.max(costs.cap_usd || 0, (costs.settled_usd || 0) + (costs.reserved_usd || 0), 1e-9);
  fill("budget-bar",
    barChart([{label: "day", values: [
      {value: costs.settled_usd || 0, color: "var(--settled)", title: `settled ${usd(costs.settled_usd)}`},
      {value: costs.reserved_usd || 0, color: "var(--reserved)", title: `reserved ${usd(costs.reserved_usd)}`},
    ], total: `${percent(((costs.settled_usd || 0) + (costs.reserved_usd || 0)) / cap)} of cap`}],
    {max: cap, labelWidth: 40, rowHeight: 28}),
    legend([["settled", "var(--settled)"], ["reserved", "var(--reserved)"], ["remaining", "#eef1f5"]]));

  const settled = costs.settled_by_operation_usd || {};
  const reserved = costs.reserved_by_operation_usd || {};
  const caps = costs.operation_caps_usd || {};
  const operations = [...new Set([...Object.keys(settled), ...Object.keys(reserved),
                                  ...Object.keys(caps)])].sort();
  if (!operations.length) {
    fill("budget-ops", empty("No AI spend yet today."));
  } else {
    const max = Math.max(1e-9, ...operations.map((op) =>
      Math.max(caps[op] || 0, (settled[op] || 0) + (reserved[op] || 0))));
    fill("budget-ops",
      barChart(operations.map((op) => ({label: op, values: [
        {value: settled[op] || 0, color: "var(--settled)", title: `settled ${usd(settled[op] || 0)}`},
        {value: reserved[op] || 0, color: "var(--reserved)", title: `reserved ${usd(reserved[op] || 0)}`},
      ]})), {max, format: usd}),
      table([["operation"], ["settled", "r"], ["reserved", "r"], ["cap", "r"]],
        operations.map((op) => [[op], [h("span", {"data-op-settled": op, text: usd(settled[op] || 0)}), "r"],
          [h("span", {"data-op-reserved": op, text: usd(reserved[op] || 0)}), "r"],
          [caps[op] !== undefined ? usd(caps[op]) : "day cap", "r"]])));
  }
  const models = Object.entries(costs.settled_by_model_usd || {});
  fill("budget-foot",
    `${plural(costs.paid_calls ?? 0, "paid call")} · `
    + `${plural(costs.downgraded_requests ?? 0, "request")} downgraded to local · `
    + `${plural(costs.open_reservations ?? 0, "open reservation")}`
    + (models.length ? " · by model: " + models.map(([m, v]) => `${m} ${usd(v)}`).join(", ") : "")
    + (costs.authoritative === false ? " · from a standby copy (the day's owner did not answer)" : ""));
}

async function loadQuality() {
  let q;
  // The seller filter narrows the quality figures too.
  const seller = state.filters.seller_id;
  try {
    q = await api(`/api/stats/quality${seller ? "?seller_id=" + encodeURIComponent(seller) : ""}`);
  } catch (error) {
    panelError("tier-chart", error);
    return;
  }
  fill("q-photos", String(q.photos ?? 0));
  fill("q-before", score(q.mean_score && q.mean_score.before));
  fill("q-after", score(q.mean_score && q.mean_score.after));
  const tiers = q.tiers || {};
  const known = [...TIERS, ...new Set([...Object.keys(tiers.before || {}),
                                       ...Object.keys(tiers.after || {})].filter((t) => !TIERS.includes(t)))];
  fill("tier-chart",
    groupedBars(known, [
      {name: "before", color: "var(--before)", values: tiers.before || {}},
      {name: "after", color: "var(--after)", values: tiers.after || {}},
    ]),
    legend([["before", "var(--before)"], ["after", "var(--after)"]]));
  const issues = Object.entries(q.issues || {}).sort((a, b) => b[1] - a[1]);
  fill("issue-chart", issues.length
    ? barChart(issues.map(([issue, n]) => ({label: issue.replaceAll("_", " "),
                                            values: [{value: n, color: "var(--poor)"}]})),
               {format: (n) => String(n), labelWidth: 160})
    : empty("No issues found."));
  const days = q.by_day || [];
  fill("day-chart", days.length
    ? [dayLines(days), legend([["mean before", "var(--before)"], ["mean after", "var(--after)"]])]
    : empty("No photos yet."));
  const sellers = q.by_seller || [];
  document.getElementById("quality-sub").textContent = seller ? `seller ${seller}`
    : sellers.length ? `all ${plural(sellers.length, "seller")}` : "";
}

async function loadPipeline() {
  let p;
  try {
    p = await api("/api/pipeline");
  } catch (error) {
    panelError("agents", error);
    return;
  }
  const agents = p.agents || [];
  fill("agents", agents.length
    ? table([["agent"], ["topic"], ["lag", "r"]], agents.map((a) =>
        [[a.name], [h("span", {class: "reason", text: a.topic || (a.topics || []).join(", ")})],
         [h("span", {class: a.lag > 0 ? "pill warn" : "pill ok", text: String(a.lag ?? 0)}), "r"]]))
    : empty("No agents reported."));
  const letters = p.dead_letters || {};
  const total = letters.total ?? 0;
  const totalPill = document.getElementById("dl-total");
  totalPill.textContent = String(total);
  totalPill.className = `pill plain ${total ? "bad" : "ok"}`;
  const recent = letters.recent || [];
  fill("dead-letters", recent.length
    ? table([["when"], ["stage"], ["reason"], ["image"]], recent.map((d) => [
        [h("span", {class: "muted", text: when(d.failed_at)})], [d.stage],
        [h("span", {class: "reason", text: `${d.error_class}: ${d.error_message}`})],
        [h("span", {class: "reason", text: (d.image_id || "").slice(0, 12)})]]))
    : empty("No dead letters."));
}

async function loadUsage() {
  let usage;
  try {
    usage = await api("/api/stats/usage?days=7");
  } catch (error) {
    panelError("usage", error);
    return;
  }
  const byOp = new Map();
  for (const row of usage.days || []) {
    const op = byOp.get(row.operation) || {calls: 0, cache_hits: 0, failures: 0, spend_usd: 0};
    op.calls += row.calls || 0;
    op.cache_hits += row.cache_hits || 0;
    op.failures += row.failures || 0;
    op.spend_usd += row.spend_usd || 0;
    byOp.set(row.operation, op);
  }
  const totals = usage.totals || {};
  fill("usage", byOp.size
    ? table([["operation"], ["calls", "r"], ["cache hits", "r"], ["failures", "r"], ["spend", "r"]],
        [...[...byOp.entries()].sort().map(([op, u]) => [[op], [u.calls, "r"], [u.cache_hits, "r"],
                                                         [u.failures, "r"], [usd(u.spend_usd), "r"]]),
         [[h("strong", {text: "total"})], [totals.calls ?? "", "r"], [totals.cache_hits ?? "", "r"],
          ["", "r"], [h("strong", {text: usd(totals.spend_usd)}), "r"]]])
    : empty("No AI calls in the last 7 days."));
}

// ---------------------------------------------------------------- photos

function moveText(before, after) {
  if (!before) return h("span", {class: "muted", text: "not assessed yet"});
  const parts = [h("span", {text: `${before.tier} ${score(before.score)}`})];
  if (after) {
    const delta = (after.score ?? 0) - (before.score ?? 0);
    const cls = delta > 0.05 ? "up" : delta < -0.05 ? "down" : "same";
    parts.push(" → ", h("span", {text: `${after.tier} ${score(after.score)}`}), " ",
               h("span", {class: cls, text: `(${delta >= 0 ? "+" : ""}${delta.toFixed(1)})`}));
  }
  return h("span", {class: "move"}, parts);
}

function figure(which, url, tier, scoreValue, placeholder, fullUrl) {
  // A click opens the full-size image (the original, or the published large rendition).
  const frame = h("div", {class: "frame"}, url
    ? h("a", {href: fullUrl || url, target: "_blank", rel: "noopener", title: `open the ${which} image`},
        h("img", {class: `img-${which}`, src: url, alt: `${which}`, loading: "eager"}))
    : h("div", {class: "placeholder", text: placeholder}));
  return h("figure", {class: which}, frame,
    h("figcaption", {}, h("span", {text: which}), tier ? h("span", {}, tierBadge(tier), " ", score(scoreValue)) : ""));
}

function stepChips(job) {
  if (!job || !job.steps || !job.steps.length) return null;
  return h("div", {class: "chips"}, job.steps.slice().sort((a, b) => a.order - b.order).map((step) => {
    const ai = step.method === "ai";
    const cls = step.success === false ? "chip failed-step" : ai ? "chip ai" : "chip";
    const label = `${step.operation}${ai ? " (ai)" : ""}${step.cost_usd ? " " + usd(step.cost_usd) : ""}`;
    const title = [step.method, step.model_id, step.latency_ms !== undefined ? `${step.latency_ms} ms` : "",
                   step.details].filter(Boolean).join(" · ");
    return h("span", {class: cls, title, text: label});
  }));
}

function photoCard(p) {
  const after = p.after || null;
  const afterUrl = p.thumbnail_url || p.large_url;
  const waiting = p.status === "failed" ? "failed" : p.status === "skipped" ? "skipped" : "processing…";
  const card = h("article", {class: "photo", "data-image-id": p.image_id, "data-status": p.status},
    h("div", {class: "pair"},
      figure("before", p.original_url, p.before && p.before.tier, p.before && p.before.score, "no original"),
      figure("after", afterUrl, after && after.tier, after && after.score, waiting, p.large_url)),
    h("div", {class: "meta"},
      h("div", {class: "title", title: p.filename || p.image_id, text: p.filename || p.sku_id || p.image_id}),
      h("div", {class: "ids", text: `${p.seller_id} · ${p.sku_id} · ${p.image_id.slice(0, 16)}`}),
      h("div", {}, h("span", {class: `pill ${p.status === "completed" ? "ok" : p.status === "failed" ? "bad" : "warn"}`,
                              text: p.status}), " ", moveText(p.before, after)),
      p.issues && p.issues.length
        ? h("div", {class: "chips"}, p.issues.map((i) => h("span", {class: "chip issue", text: i.replaceAll("_", " ")})))
        : null,
      h("div", {class: "steps-slot"}),
      h("div", {class: "cost"}, "AI cost ", h("strong", {text: usd(p.total_cost_usd ?? 0)}),
        h("span", {class: "muted", text: ` · updated ${when(p.updated_at)}`})),
      p.kept_original
        ? h("div", {class: "note", text: `Original kept: ${p.kept_original_reason || "no reason recorded"}`})
        : null,
      h("div", {class: "failure-slot"})));
  loadDetail(p.image_id, card);
  return card;
}

// Steps (and a failure's reason) come from the photo's detail document.
const detailQueue = [];
let detailRunning = 0;
function loadDetail(imageId, card) {
  detailQueue.push([imageId, card]);
  pumpDetails();
}
function pumpDetails() {
  while (detailRunning < 4 && detailQueue.length) {
    const [imageId, card] = detailQueue.shift();
    detailRunning += 1;
    api(`/api/images/${encodeURIComponent(imageId)}`).then((detail) => {
      const chips = stepChips(detail.job);
      card.querySelector(".steps-slot").replaceChildren(chips || h("span", {class: "muted", text:
        detail.job ? "no steps" : "no enhancement job yet"}));
      if (detail.failure) {
        card.querySelector(".failure-slot").replaceChildren(h("div", {class: "note failure",
          text: `Failed at ${detail.failure.stage}: ${detail.failure.reason}`}));
      }
    }).catch((error) => {
      if (!(error instanceof AuthNeeded)) {
        card.querySelector(".steps-slot").replaceChildren(h("span", {class: "error", text: String(error.message)}));
      }
    }).finally(() => { detailRunning -= 1; pumpDetails(); });
  }
}

function photosQuery(cursor) {
  const params = new URLSearchParams({limit: String(PAGE_SIZE)});
  for (const [k, v] of Object.entries(state.filters)) if (v) params.set(k, v);
  if (cursor) params.set("cursor", cursor);
  return `/api/images?${params}`;
}

// A card is drawn again when its photo changed, and every 30 minutes anyway: the image
// links the API signs expire after an hour.
function cardStamp(p) {
  return `${p.status}|${p.updated_at}|${Math.floor(Date.now() / 1800000)}`;
}

// First page: cards that did not change keep their node (and their loaded images).
async function loadPhotos() {
  let page;
  try {
    page = await api(photosQuery(null));
  } catch (error) {
    panelError("photo-list", error);
    return;
  }
  const list = document.getElementById("photo-list");
  const keep = new Map();
  const nodes = (page.items || []).map((p) => {
    const stamp = cardStamp(p);
    const known = state.cards.get(p.image_id);
    const node = known && known.stamp === stamp ? known.node : photoCard(p);
    keep.set(p.image_id, {stamp, node});
    return node;
  });
  state.cards = keep;
  list.replaceChildren(...(nodes.length ? nodes : [empty("No photos match.")]));
  state.cursor = page.next_cursor;
  document.getElementById("more").hidden = !page.next_cursor;
  document.getElementById("photos-sub").textContent =
    `${nodes.length}${page.next_cursor ? "+" : ""} shown`;
}

async function loadMore() {
  if (!state.cursor) return;
  const page = await api(photosQuery(state.cursor));
  const list = document.getElementById("photo-list");
  for (const p of page.items || []) {
    const node = photoCard(p);
    state.cards.set(p.image_id, {stamp: cardStamp(p), node});
    list.append(node);
  }
  state.cursor = page.next_cursor;
  document.getElementById("more").hidden = !page.next_cursor;
  document.getElementById("photos-sub").textContent =
    `${state.cards.size}${page.next_cursor ? "+" : ""} shown`;
}

// ---------------------------------------------------------------- wiring

async function refresh() {
  await Promise.all([loadHealth(), loadBudget(), loadQuality(), loadPipeline(), loadUsage(),
                     loadPhotos()]);
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
}

function readFilters() {
  state.filters = {
    seller_id: document.getElementById("f-seller").value.trim(),
    tier: document.getElementById("f-tier").value,
    status: document.getElementById("f-status").value,
  };
  const params = new URLSearchParams(Object.entries(state.filters).filter(([, v]) => v));
  history.replaceState(null, "", params.toString() ? `?${params}` : location.pathname);
}

function start() {
  // Filters live in the address, so a filtered view can be shared.
  const query = new URLSearchParams(location.search);
  document.getElementById("f-seller").value = query.get("seller_id") || "";
  document.getElementById("f-tier").value = query.get("tier") || "";
  document.getElementById("f-status").value = query.get("status") || "";
  readFilters();

  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    readFilters();
    state.cards = new Map();
    loadPhotos();
    loadQuality();
  });
  document.getElementById("f-clear").addEventListener("click", () => {
    for (const id of ["f-seller", "f-tier", "f-status"]) document.getElementById(id).value = "";
    readFilters();
    loadPhotos();
    loadQuality();
  });
  document.getElementById("more").addEventListener("click", () => loadMore());
  document.getElementById("refresh").addEventListener("click", () => refresh());
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(KEY_STORE, document.getElementById("api-key").value.trim());
    document.getElementById("keybox").hidden = true;
    state.needsKey = false;
    state.cards = new Map();
    refresh();
  });
  document.getElementById("forget-key").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORE);
    document.getElementById("api-key").value = "";
  });
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

start();
