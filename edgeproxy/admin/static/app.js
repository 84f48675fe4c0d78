// The timeline UI of the edgeproxy admin API (docs/ui.md). Plain DOM, no library: every
// value from an exchange is set as text (never as HTML), since a viewer, an origin or a
// function wrote it.
"use strict";

const KEPT = 500; // rows the list keeps
const state = { rows: new Map(), selected: null, source: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the CSP
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function filterQuery() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(document.getElementById("filters"))) {
    if (String(value).trim()) params.set(key, String(value).trim());
  }
  return params;
}

function xCacheClass(xc) {
  if (/^(Refresh)?Hit/.test(xc)) return "xc-hit";
  if (/^Miss/.test(xc)) return "xc-miss";
  if (/Error/.test(xc)) return "xc-error";
  if (/(Lambda|Function)/.test(xc)) return "xc-fn";
  return "";
}

function clock(seconds) {
  const d = new Date(seconds * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function row(rec) {
  const path = rec.uri + (rec.query ? "?" + rec.query : "");
  return el("tr", { class: "exchange", "data-id": rec.id, onclick: () => select(rec.id) },
    el("td", {}, clock(rec.started)),
    el("td", { class: "method" }, rec.method),
    el("td", { class: "path", title: path }, path),
    el("td", { class: "pattern" }, rec.path_pattern),
    el("td", { class: "status s" + String(rec.status)[0] }, rec.status),
    el("td", { class: "xcache " + xCacheClass(rec.x_cache) }, rec.x_cache.replace(" from cloudfront", "")),
    el("td", { class: "num" }, rec.duration_ms.toFixed(1)),
    el("td", { class: "stages" }, rec.stages.map((s) => el("span", { class: "stage" }, s))));
}

function add(rec) {
  const body = document.querySelector("#list tbody");
  if (state.rows.has(rec.id)) return;
  const tr = row(rec);
  if (rec.id === state.selected) tr.classList.add("selected");
  state.rows.set(rec.id, tr);
  body.prepend(tr); // newest first
  while (state.rows.size > KEPT) {
    const [oldest, node] = state.rows.entries().next().value;
    node.remove();
    state.rows.delete(oldest);
  }
  document.getElementById("empty").hidden = true;
}

async function reload() {
  const params = filterQuery();
  params.set("limit", String(KEPT));
  const answer = await fetch("/exchanges?" + params);
  const records = answer.ok ? await answer.json() : [];
  document.querySelector("#list tbody").replaceChildren();
  state.rows.clear();
  document.getElementById("empty").hidden = records.length > 0;
  records.forEach(add);
  listen();
}

function listen() {
  if (state.source) state.source.close();
  const live = document.getElementById("live");
  const source = new EventSource("/exchanges/stream?" + filterQuery());
  source.addEventListener("open", () => { live.className = "on"; });
  source.addEventListener("error", () => { live.className = "off"; });
  source.addEventListener("exchange", (event) => add(JSON.parse(event.data)));
  source.addEventListener("lagged", () => reload());
  state.source = source;
}

// -- the detail ------------------------------------------------------------------------------

async function select(id) {
  state.selected = id;
  for (const [key, tr] of state.rows) tr.classList.toggle("selected", key === id);
  if (location.hash !== "#" + id) history.replaceState(null, "", "#" + id);
  const pane = document.getElementById("detail");
  const answer = await fetch("/exchanges/" + encodeURIComponent(id));
  pane.hidden = false;
  if (!answer.ok) {
    pane.replaceChildren(el("p", { class: "error-text" }, "This exchange is no longer kept."));
    return;
  }
  pane.replaceChildren(...detail(await answer.json()).flat(Infinity).filter(Boolean));
  pane.scrollTop = 0;
}

function facts(pairs) {
  return el("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}

function headerTable(headers) {
  return el("table", { class: "headers" },
    el("tbody", {}, headers.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v)))));
}

function bodyLine(message) {
  if (!message.body_size && message.body_size !== null) return null;
  const size = message.body_size === null ? "streamed, size not known" : message.body_size + " bytes";
  const kept = message.body_truncated ? ` (first ${message.body_kept} kept)` : "";
  return el("p", {}, "body: " + size + kept + " ",
    message.body_url ? el("a", { href: message.body_url, download: "" }, "download") : null);
}

function message(title, m) {
  if (!m) return [];
  const line = m.status ? String(m.status) : `${m.method} ${m.uri}${m.query ? "?" + m.query : ""}`;
  return [el("h4", {}, title + ": " + line), headerTable(m.headers), bodyLine(m)];
}

function diffList(diff) {
  if (!diff) return el("p", { class: "nochange" }, "no output (the call failed)");
  const items = [];
  for (const [name, ...values] of diff.headers_added) {
    items.push(el("li", { class: "diff-added" }, `+ ${name}: ${values.join(", ")}`));
  }
  for (const [name, ...values] of diff.headers_removed) {
    items.push(el("li", { class: "diff-removed" }, `- ${name}: ${values.join(", ")}`));
  }
  for (const change of diff.headers_changed) {
    items.push(el("li", { class: "diff-changed" },
      `~ ${change.name}: ${change.before.join(", ")} → ${change.after.join(", ")}`));
  }
  for (const part of ["method", "uri", "query", "status"]) {
    if (diff[part]) items.push(el("li", { class: "diff-changed" }, `~ ${part}: ${diff[part][0]} → ${diff[part][1]}`));
  }
  if (diff.generated) items.push(el("li", { class: "diff-added" }, `generated a response: ${diff.generated}`));
  if (!items.length) return el("p", { class: "nochange" }, "changed nothing");
  return el("div", { class: "diff" }, el("ul", {}, items));
}

function json(title, value) {
  if (value === null || value === undefined) return null;
  return el("details", {}, el("summary", {}, title), el("pre", {}, JSON.stringify(value, null, 2)));
}

function stageCall(call) {
  const report = call.report || {};
  return el("div", { class: "call" + (call.error ? " failed" : ""), "data-stage": call.stage },
    el("h4", {}, `${call.stage} · ${call.function} (${call.kind}) · ${call.duration_ms.toFixed(1)} ms`),
    call.error ? el("p", { class: "error-text" }, call.error) : null,
    el("div", { class: "diff-block" }, diffList(call.diff)),
    Object.keys(report).length ? facts(Object.entries(report).map(([k, v]) => ["REPORT " + k, v])) : null,
    call.logs.length ? el("pre", { class: "logs" }, call.logs.join("\n")) : null,
    json("event in", call.event),
    json("result out", call.result));
}

function cacheDecision(cache) {
  if (!cache) return [el("p", { class: "nochange" }, "not looked up (a method that is never cached, or answered before the cache)")];
  const stored = cache.stored || {};
  const why = cache.ttl_why;
  const key = cache.key;
  return [facts([
    ["result", cache.result],
    ["key", `${key.host}${key.uri}${key.query ? "?" + key.query : ""}`],
    ["key headers", key.headers.filter((v) => v !== null).join(", ")],
    ["key cookies", key.cookies],
    ["key encoding", key.encoding],
    ["stored", cache.stored ? `status ${stored.status}, TTL ${stored.ttl_s} s, age ${stored.age_s} s` : "not stored"],
    ["TTL from", `Cache-Control: ${why.cache_control ?? "—"}; Expires: ${why.expires ?? "—"}; min/default/max TTL ${why.min_ttl}/${why.default_ttl}/${why.max_ttl}`],
  ])];
}

function timeline(ex) {
  const total = Math.max(ex.duration_ms, 0.001);
  return el("div", { class: "timeline" }, ex.timings.map((t) => {
    const kind = t.step === "total" ? "" : t.step.startsWith("origin") ? " origin-bar" : " stage-bar";
    const left = Math.min(100, (t.start_ms / total) * 100);
    const width = Math.max(0.5, Math.min(100 - left, (t.duration_ms / total) * 100));
    return el("div", { class: "bar-row" },
      el("span", { class: "label", title: t.step }, t.step),
      el("span", { class: "bar-track" }, el("span", { class: "bar" + kind, style: { left: left + "%", width: width + "%" } })),
      el("span", { class: "num" }, t.duration_ms.toFixed(2) + " ms"));
  }));
}

function detail(ex) {
  const origin = ex.origin.map((call, n) => el("div", { class: "origin-call" },
    facts([["target", call.target], ["took", call.duration_ms.toFixed(2) + " ms"], ["error", call.error]]),
    message(`request #${n + 1}`, call.request), message("answer", call.response)));
  return [
    el("h2", {}, `${ex.method} ${ex.uri}${ex.query ? "?" + ex.query : ""}`),
    facts([["status", ex.status], ["X-Cache", ex.x_cache], ["behavior", `${ex.path_pattern} (#${ex.behavior})`],
      ["request id", ex.request_id], ["duration", ex.duration_ms.toFixed(2) + " ms"], ["error", ex.error]]),
    el("h3", {}, "Timeline"), timeline(ex),
    el("h3", {}, "Viewer request"), message("from the viewer", ex.request),
    el("h3", {}, `Functions (${ex.stage_calls.length})`),
    ex.stage_calls.length ? ex.stage_calls.map(stageCall) : el("p", { class: "nochange" }, "no function ran"),
    el("h3", {}, "Cache"), cacheDecision(ex.cache),
    el("h3", {}, `Origin (${ex.origin.length})`),
    ex.origin.length ? origin : el("p", { class: "nochange" }, "the origin was not asked"),
    el("h3", {}, "Viewer response"), message("to the viewer", ex.response),
  ];
}

// -- start -----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("filters");
  let timer = null;
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(reload, 200); });
  form.addEventListener("reset", () => setTimeout(reload, 0));
  form.addEventListener("submit", (event) => { event.preventDefault(); reload(); });
  reload().then(() => { if (location.hash.length > 1) select(decodeURIComponent(location.hash.slice(1))); });
});
