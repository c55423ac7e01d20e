// The review page: keyboard first. Every decision is POSTed at once and the server writes it
// to the corrections file before answering, so nothing lives only in this page.
"use strict";

const $ = (id) => document.getElementById(id);
const FRONT = "front-office", BACK = "back-office";
const page = {
  items: [], functions: {}, reasons: {}, progress: null, source: "", corrections: "",
  current: null,      // id of the item shown
  office: null,       // office chosen for it (starts as the model's)
  highlighted: 0,     // index in the shown function list
  skipped: new Set(), // skipped in this visit (a reload starts them again)
  history: [],        // this visit's skips and decisions, for undo
  details: new Map(), // id -> the item with its words
  busy: false,
};

async function api(path, body) {
  const options = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
  return data;
}

function status(message, error = false) {
  $("status").textContent = message;
  $("status").className = error ? "error" : "";
}

function pct(p) {
  if (p === null || p === undefined) return "";
  return p > 0 && p < 0.005 ? "(<1%)" : `(${(100 * p).toFixed(0)}%)`;
}
function nice(fn) { return fn ? fn.replace(/_/g, " ") : "none"; }

async function load() {
  try {
    const state = await api("/api/state");
    Object.assign(page, { items: state.items, functions: state.functions, reasons: state.reasons, progress: state.progress,
      source: state.source, corrections: state.corrections });
    $("source").textContent = `${state.source} → ${state.corrections}`;
    next();
  } catch (err) {
    status(`could not load the queue: ${err.message}`, true);
  }
}

function undecided(item) { return !item.decision; }

function next() {
  let item = page.items.find((it) => undecided(it) && !page.skipped.has(it.id));
  if (!item && page.items.some(undecided)) {  // only skipped ones are left: go round again
    page.skipped.clear();
    item = page.items.find(undecided);
  }
  show(item ? item.id : null);
}

async function show(id) {
  page.current = id;
  document.body.dataset.current = id === null ? "" : String(id);
  renderProgress();
  const done = id === null;
  $("item").hidden = $("decide").hidden = done;
  $("done").hidden = !done;
  if (done) {
    $("apply-command").textContent = `bpo-classify apply-corrections ${page.source} ${page.corrections} -o final.csv`;
    $("train-command").textContent = `bpo-classify train --add ${page.corrections} --out corrected.bpoc`;
    return;
  }
  const item = page.items[id];
  page.office = item.decision ? item.decision.office : item.office;
  $("filter").value = "";
  renderItem(item);
  renderFunctions();
  if (!page.details.has(id)) {
    try {
      page.details.set(id, await api(`/api/items/${id}`));
    } catch (err) {
      status(`could not explain this text: ${err.message}`, true);
      return;
    }
  }
  if (page.current === id) renderWords(page.details.get(id));
}

function renderProgress() {
  const p = page.progress;
  if (!p) return;
  $("progress-text").textContent = `${p.done} of ${p.total} texts done (${p.done_rows} of ${p.total_rows} rows) · ${p.todo} to do`;
  $("progress-fill").style.width = p.total ? `${(100 * p.done / p.total).toFixed(1)}%` : "100%";
}

function renderItem(item) {
  $("position").textContent = `item ${item.id + 1} of ${page.items.length}`;
  $("count").textContent = item.count === 1 ? `1 row (row ${item.rows[0]})` : `${item.count} rows with this text (rows ${item.rows.slice(0, 8).join(", ")}${item.count > 8 ? ", …" : ""})`;
  $("reason").textContent = `flagged: ${nice(item.review_reason) || "needs review"}${page.reasons[item.review_reason] ? ": " + page.reasons[item.review_reason] : ""}`;
  $("text").textContent = item.text;
  const columns = $("columns");
  columns.replaceChildren();
  for (const [name, value] of Object.entries(item.columns)) {
    if (!value) continue;
    const div = document.createElement("div");
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = name; dd.textContent = value;
    div.append(dt, dd); columns.append(div);
  }
  $("model-office").textContent = item.office || "no office";
  $("model-office-p").textContent = pct(item.office_confidence);
  $("model-function").textContent = nice(item.function);
  $("model-function-p").textContent = pct(item.function_confidence);
  $("runners-up").textContent = item.runners_up.map((r) => `${nice(r.function)} ${pct(r.confidence)}`).join(", ");
  $("runners-up-line").hidden = !item.runners_up.length;
  $("decided").hidden = !item.decision;
  if (item.decision) $("decided-labels").textContent = `${item.decision.office}, ${nice(item.decision.function)}`;
  $("words-front").replaceChildren(); $("words-back").replaceChildren(); $("mixed").textContent = "";
}

function renderWords(details) {
  for (const [side, list] of [["front", details.words.front], ["back", details.words.back]]) {
    const ul = $(`words-${side}`);
    ul.replaceChildren(...(list.length ? list : [null]).map((w) => {
      const li = document.createElement("li");
      if (!w) { li.textContent = "none"; return li; }
      const term = document.createElement("span");
      term.textContent = w.term;
      li.append(term, ` ${w.contribution > 0 ? "+" : ""}${w.contribution.toFixed(2)}${w.kind === "opening" ? " (opening word)" : ""}`);
      return li;
    }));
  }
  const m = details.words.mixed_probability;
  $("mixed").textContent = m === null || m === undefined ? "" : `P(mixed task) ${(100 * m).toFixed(0)}%`;
}

function shownFunctions() {
  const query = $("filter").value.trim().toLowerCase().replace(/\s+/g, "_");
  const all = query ? [...page.functions[FRONT], ...page.functions[BACK]] : page.functions[page.office] || [];
  return query ? all.filter((f) => f.includes(query)) : all;
}

function renderFunctions(keepHighlight = false) {
  for (const [id, office] of [["office-front", FRONT], ["office-back", BACK]]) $(id).setAttribute("aria-checked", String(page.office === office));
  const item = page.items[page.current];
  const list = shownFunctions();
  if (!keepHighlight) {
    const preferred = item.decision ? item.decision.function : item.function;
    page.highlighted = $("filter").value.trim() ? 0 : Math.max(0, list.indexOf(preferred));
  }
  page.highlighted = Math.min(page.highlighted, Math.max(0, list.length - 1));
  const ol = $("functions");
  ol.replaceChildren(...list.map((fn, i) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.function = fn;
    if (fn === item.function) button.classList.add("model-choice");
    if (i === page.highlighted) button.classList.add("highlighted");
    const key = i < 10 ? `${(i + 1) % 10}` : "";
    button.innerHTML = key ? `<kbd>${key}</kbd> ` : "";
    button.append(nice(fn));
    const runner = item.runners_up.find((r) => r.function === fn);
    const p = fn === item.function ? item.function_confidence : runner ? runner.confidence : null;
    if (p !== null) { const span = document.createElement("span"); span.className = "p"; span.textContent = pct(p); button.append(span); }
    button.addEventListener("click", () => decide(fn));
    li.append(button);
    return li;
  }));
}

function officeOf(fn) { return page.functions[FRONT].includes(fn) ? FRONT : BACK; }

async function decide(fn) {
  if (page.busy || page.current === null || !fn) return;
  const id = page.current, office = officeOf(fn);
  page.busy = true;
  try {
    const result = await api("/api/decisions", { id, office, function: fn });
    page.items[id].decision = result.decision;
    page.progress = result.progress;
    page.history.push({ type: "decide", id });
    status(`saved: “${page.items[id].text}” → ${office}, ${nice(fn)}`);
    next();
  } catch (err) {
    status(`not saved: ${err.message}`, true);
  } finally {
    page.busy = false;
  }
}

function skip() {
  if (page.current === null) return;
  page.skipped.add(page.current);
  page.history.push({ type: "skip", id: page.current });
  status(`skipped item ${page.current + 1}; it comes back after the others`);
  next();
}

async function undo() {
  if (page.busy) return;
  const last = page.history[page.history.length - 1];
  if (last && last.type === "skip") {
    page.history.pop();
    page.skipped.delete(last.id);
    status(`back to item ${last.id + 1}`);
    return show(last.id);
  }
  page.busy = true;
  try {
    const result = await api("/api/undo", {});
    page.progress = result.progress;
    if (last) page.history.pop();
    if (result.text === null) { status("nothing to undo"); renderProgress(); return; }
    if (result.id === null) { status(`took back the decision on “${result.text}”`); renderProgress(); return; }
    page.items[result.id].decision = null;
    status(`took back the decision on item ${result.id + 1}`);
    await show(result.id);
  } catch (err) {
    status(`undo failed: ${err.message}`, true);
  } finally {
    page.busy = false;
  }
}

function setOffice(office) {
  if (page.current === null) return;
  page.office = office;
  $("filter").value = "";
  renderFunctions();
}

function moveHighlight(step) {
  const n = shownFunctions().length;
  if (!n) return;
  page.highlighted = (page.highlighted + step + n) % n;
  renderFunctions(true);
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const inFilter = event.target === $("filter");
  if (inFilter) {
    if (event.key === "Enter") { event.preventDefault(); decide(shownFunctions()[page.highlighted]); $("filter").blur(); }
    else if (event.key === "Escape") { $("filter").value = ""; $("filter").blur(); renderFunctions(); }
    else if (event.key === "ArrowDown" || event.key === "ArrowUp") { event.preventDefault(); moveHighlight(event.key === "ArrowDown" ? 1 : -1); }
    return;
  }
  if (event.target instanceof HTMLButtonElement && event.key === "Enter") return;  // the button's own click
  const key = event.key;
  if (key === "f") setOffice(FRONT);
  else if (key === "b") setOffice(BACK);
  else if (/^[0-9]$/.test(key)) { const i = key === "0" ? 9 : Number(key) - 1; decide(shownFunctions()[i]); }
  else if (key === "Enter") decide(shownFunctions()[page.highlighted]);
  else if (key === "s") skip();
  else if (key === "u") undo();
  else if (key === "/") { event.preventDefault(); $("filter").focus(); }
  else if (key === "ArrowDown" || key === "ArrowUp") { event.preventDefault(); moveHighlight(key === "ArrowDown" ? 1 : -1); }
  else return;
  event.preventDefault();
});

$("filter").addEventListener("input", () => renderFunctions());
$("office-front").addEventListener("click", () => setOffice(FRONT));
$("office-back").addEventListener("click", () => setOffice(BACK));
$("accept").addEventListener("click", () => decide(shownFunctions()[page.highlighted]));
$("skip").addEventListener("click", skip);
$("undo").addEventListener("click", undo);
load();
