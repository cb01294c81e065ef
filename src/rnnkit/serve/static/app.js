// The page of `rnnkit serve`: pick a run, send one input to POST v1/{run}/predict and draw the
// answer, with a view per task. Plain JavaScript, no build step and no network beyond the server.
// URLs are relative to the page, so it also works behind a proxy that serves it under a prefix.
"use strict";

const $ = (selector) => document.querySelector(selector);
const SVG = "http://www.w3.org/2000/svg";
let runs = [];        // GET /v1/runs
let image = null;     // the chosen image as a data URL

// el("td", {class: "x", title: "t"}, child, "text"): an element with attributes and children.
function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

const fmt = (x, digits = 3) => (x === null || x === undefined ? "n/a" : Number(x).toFixed(digits));
const percent = (p) => `${(100 * p).toFixed(1)} %`;
const currentRun = () => runs.find((r) => r.name === $("#run").value);

// A colour from white (0) to dark blue (1) for a weight, and a text colour that stays readable.
function shade(w) {
  const light = 100 - 62 * Math.max(0, Math.min(1, w));
  return { background: `hsl(212, 75%, ${light}%)`, color: light < 60 ? "#fff" : "#111" };
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

// ---------------------------------------------------------------------------------- controls

// Placeholder and hint of the input box, per input kind.
const INPUT_HELP = {
  text: ["Text", "Type a sentence.", "My son, give ear to my words."],
  series: ["Series", "Paste CSV with a header (the run's time and target columns), or numbers "
    + "only (they start at the date below).",
    "time,value\n2020-01-01,112\n2020-02-01,118"],
};

async function loadRuns() {
  const response = await fetch("v1/runs");
  runs = (await response.json()).runs;
  const select = $("#run");
  select.replaceChildren(...runs.map((r) => el("option", { value: r.name }, `${r.name} (${r.task})`)));
  const wanted = new URLSearchParams(location.hash.slice(1)).get("run");
  if (runs.some((r) => r.name === wanted)) select.value = wanted;
  showControls();
}

// Show the input and option fields of the selected run.
function showControls() {
  const run = currentRun();
  if (!run) return;
  history.replaceState(null, "", `#run=${encodeURIComponent(run.name)}`);
  $("#run-summary").textContent = `${run.task} · ${run.input} input`;
  $("#image-field").hidden = run.input !== "image";
  $("#text-field").hidden = run.input === "image";
  if (run.input !== "image") {
    const [label, hint, example] = INPUT_HELP[run.input] || INPUT_HELP.text;
    $("#text-label").textContent = label;
    $("#text-hint").textContent = hint;
    $("#text").placeholder = example;
  }
  $("#start-field").hidden = run.input !== "series";
  $("#generate-field").hidden = !run.generate;
  const options = run.options.filter((o) => !(run.generate && o.name === "max_tokens"));
  $("#options").replaceChildren(...options.map(optionField));
  $("#options-box").hidden = options.length === 0;
  $("#options-box summary").textContent = `Options (${options.length})`;
  $("#result").replaceChildren();
  showError("");
}

// One labelled input for a declared option; empty means "the run's default".
function optionField(option) {
  const id = `opt-${option.name}`;
  const input = option.choices ? el("select", { id, name: option.name },
    el("option", { value: "" }, "default"), option.choices.map((c) => el("option", { value: c }, c)))
    : option.type === "boolean" ? el("input", { type: "checkbox", id, name: option.name })
    : el("input", {
      type: option.type === "string" ? "text" : "number", id, name: option.name,
      step: option.type === "integer" ? "1" : "any", placeholder: "default",
    });
  input.dataset.type = option.type;
  return el("div", { class: "option" }, el("label", { for: id, title: option.help }, option.name),
    input, el("small", { class: "muted" }, option.help));
}

function optionValues() {
  const values = {};
  for (const input of $("#options").querySelectorAll("input, select")) {
    const type = input.dataset.type;
    if (type === "boolean") { if (input.checked) values[input.name] = true; continue; }
    if (input.value.trim() === "") continue;
    values[input.name] = type === "string" ? input.value : Number(input.value);
  }
  return values;
}

// Read an image file into a data URL and show it as chosen.
function chooseImage(file) {
  if (!file || !file.type.startsWith("image/")) { showError("that is not an image file"); return; }
  const reader = new FileReader();
  reader.onload = () => {
    image = reader.result;
    const size = file.size < 1024 ? `${file.size} bytes` : `${Math.round(file.size / 1024)} KB`;
    $("#drop-hint").textContent = `${file.name || "pasted image"} (${size})`;
    showError("");
  };
  reader.readAsDataURL(file);
}

// ---------------------------------------------------------------------------------- request

// A series box holding numbers only is sent as columns, {"start": date, "<target>": [...]}
// (the steps follow the start at the run's frequency); anything else as CSV text.
function seriesInput(text, run) {
  const parts = text.trim().split(/[\s,;]+/).filter(Boolean);
  const target = [].concat(run.config.data.target)[0];
  return parts.length && parts.every((p) => Number.isFinite(Number(p)))
    ? { start: $("#series-start").value, [target]: parts.map(Number) } : text;
}

function buildRequest(run) {
  const text = $("#text").value;
  const input = run.input === "image" ? (image || "") : run.input === "series" ? seriesInput(text, run) : text;
  const body = { inputs: [input], ...optionValues() };
  if (run.generate && document.querySelector("input[name=mode]:checked").value === "generate") {
    body.max_tokens = Number($("#max-tokens").value);
  }
  return body;
}

// One line from an error answer: {"detail": "..."} or FastAPI's list of validation errors.
function detailOf(answer, status) {
  const detail = answer && answer.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  return `the server answered ${status}`;
}

async function predict(event) {
  if (event) event.preventDefault();
  const run = currentRun();
  if (!run) return;
  const body = buildRequest(run);
  showError("");
  $("#busy").hidden = false;
  $("#submit").disabled = true;
  try {
    const response = await fetch(`v1/${encodeURIComponent(run.name)}/predict`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) { showError(detailOf(answer, response.status)); return; }
    const view = VIEWS[run.task] || rawView;
    $("#result").replaceChildren(view(answer.outputs[0], run, body));
    $("#result").dataset.view = run.task;
  } catch (error) {
    showError(`the server did not answer: ${error.message}`);
  } finally {
    $("#busy").hidden = true;
    $("#submit").disabled = false;
  }
}

// ---------------------------------------------------------------------------------- views

function rawView(output) {
  return el("pre", { class: "raw" }, JSON.stringify(output, null, 2));
}

// Translation: the n-best list; the chosen hypothesis's attention as a table, source tokens
// across and output tokens down, each cell shaded by its weight (hover or focus to read it).
function translationView(output) {
  const heatmap = el("div", { class: "heatmap-box" });
  const list = el("ol", { class: "nbest" }, output.translations.map((t, rank) => el("li", {},
    el("button", {
      type: "button", class: "hypothesis", "data-rank": rank, "aria-pressed": String(rank === 0),
      onclick: (e) => choose(rank, e.currentTarget),
    }, el("span", { class: "translation-text" }, t.translation)),
    el("span", { class: "muted" }, ` score ${fmt(t.score)}${t.truncated ? " (truncated)" : ""}`))));
  function choose(rank, button) {
    list.querySelectorAll(".hypothesis").forEach((b) => b.setAttribute("aria-pressed", b === button));
    const t = output.translations[rank];
    heatmap.replaceChildren(t.attention ? attentionTable(t.source_tokens, t.output_tokens, t.attention)
      : el("p", { class: "muted" }, "This model has no attention."));
  }
  const box = el("div", { class: "view translation" }, el("h2", {}, "Translation"), list, heatmap);
  choose(0, list.querySelector(".hypothesis"));
  return box;
}

function attentionTable(source, target, weights) {
  const readout = el("p", { class: "readout", "aria-live": "polite" }, "Hover a cell to read its weight.");
  const head = el("tr", {}, el("th", { scope: "col" }, ""),
    source.map((s) => el("th", { scope: "col", class: "source-token" }, el("span", {}, s))));
  const rows = target.map((t, i) => el("tr", {}, el("th", { scope: "row", class: "target-token" }, t),
    source.map((s, j) => {
      const w = weights[i][j];
      const text = `${t} ← ${s}: ${fmt(w, 4)}`;
      const { background } = shade(w);
      const show = () => { readout.textContent = text; };
      return el("td", {
        class: "cell", "data-row": i, "data-col": j, "data-weight": w, title: text,
        style: `background:${background}`, onmouseenter: show, onfocus: show,
      });
    })));
  const table = el("table", {
    class: "heatmap", "data-rows": target.length, "data-cols": source.length,
    "aria-label": "attention weights: output tokens down, source tokens across",
  }, el("thead", {}, head), el("tbody", {}, rows));
  return el("div", {}, el("div", { class: "scroll" }, table), readout);
}

// Captioning: the image with one caption word's attention grid upsampled over it; each word is a
// button. Cells the word looks at stay bright, the rest is darkened.
function captioningView(output) {
  const [gh, gw] = output.grid;
  const picture = el("img", { src: image, alt: "the captioned image", class: "captioned" });
  const overlay = el("canvas", { class: "overlay", "data-grid": `${gh}x${gw}`, hidden: true });
  const label = el("p", { class: "readout", "aria-live": "polite" }, "Click a word to see where it looks.");

  function draw(caption, k, button) {
    if (!picture.complete || !picture.naturalWidth) {                  // not decoded yet
      picture.addEventListener("load", () => draw(caption, k, button), { once: true });
      return;
    }
    document.querySelectorAll(".caption-word").forEach((b) => b.setAttribute("aria-pressed", b === button));
    const grid = caption.attention[k];                                  // (Hg, Wg)
    const max = Math.max(...grid.flat(), 1e-9);
    const small = el("canvas", { width: gw, height: gh });
    const pixels = small.getContext("2d").createImageData(gw, gh);
    grid.flat().forEach((w, i) => { pixels.data[4 * i + 3] = Math.round(200 * (1 - w / max)); });
    small.getContext("2d").putImageData(pixels, 0, 0);
    overlay.width = picture.clientWidth;
    overlay.height = picture.clientHeight;
    const ctx = overlay.getContext("2d");
    ctx.imageSmoothingEnabled = true;                                   // bilinear upsampling
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    ctx.drawImage(small, 0, 0, overlay.width, overlay.height);
    overlay.hidden = false;
    overlay.dataset.word = caption.tokens[k];
    overlay.dataset.index = k;
    label.textContent = `“${caption.tokens[k]}”: the brightest cell holds ${fmt(max, 3)} of the attention`;
  }

  const captions = el("ol", { class: "nbest" }, output.captions.map((c, rank) => el("li", {},
    c.tokens.map((token, k) => el("button", {
      type: "button", class: "caption-word", "data-rank": rank, "data-index": k,
      "aria-pressed": "false", disabled: !c.attention, onclick: (e) => draw(c, k, e.currentTarget),
    }, token)),
    el("span", { class: "muted" }, ` score ${fmt(c.score)}`))));
  return el("div", { class: "view captioning" }, el("h2", {}, "Caption"),
    el("p", { class: "caption-text" }, output.captions[0].caption), captions,
    el("div", { class: "image-box" }, picture, overlay), label);
}

// The history the request sent: the time and target columns of its CSV text or its object.
function historyOf(input, run) {
  const targets = [].concat(run.config.data.target);
  const prefix = (t) => (targets.length > 1 ? `${t}_` : "");
  if (typeof input !== "string") {
    const columns = Object.fromEntries(targets.map((t) => [prefix(t), input[t] || []]));
    return { time: input[run.config.data.time_column] || [], columns };
  }
  const lines = input.trim().split(/\r?\n/).map((l) => l.split(","));
  const header = lines.shift().map((h) => h.trim());
  const column = (name) => lines.map((l) => l[header.indexOf(name)]);
  const columns = {};
  for (const t of targets) columns[prefix(t)] = column(t).map(Number);
  return { time: column(run.config.data.time_column), columns };
}

// Forecasting: one SVG chart per target: history, forecast points and the interval bands.
function forecastingView(output, run, body) {
  const out = output.output;
  const history = historyOf(body.inputs[0], run);
  const charts = Object.keys(history.columns).map((prefix) => forecastChart(
    out, prefix, history.columns[prefix], history.time, out[run.config.data.time_column] || [],
    run.config.data.lookback || 24));
  return el("div", { class: "view forecasting" }, el("h2", {}, "Forecast"), charts);
}

// The last max(4 H, L) steps of history are shown, as `rnnkit predict --plot` draws them.
function forecastChart(out, prefix, past, pastTime, time, lookback) {
  const forecast = out[`${prefix}forecast`];
  const horizon = forecast.length;
  past = past.filter(Number.isFinite).slice(-Math.max(4 * horizon, lookback));
  // Interval bands, widest first so narrower ones are drawn on top.
  const bands = Object.keys(out).filter((k) => k.startsWith(`${prefix}lower_`))
    .map((k) => Number(k.slice(prefix.length + 6))).sort((a, b) => b - a);
  const all = [...past, ...forecast, ...bands.flatMap((p) => [...out[`${prefix}lower_${p}`],
    ...out[`${prefix}upper_${p}`]])].filter(Number.isFinite);
  const [lo, hi] = [Math.min(...all), Math.max(...all)];
  const W = 720, H = 300, m = { left: 56, right: 16, top: 16, bottom: 36 };
  const n = past.length + horizon;
  const x = (i) => m.left + (i / Math.max(1, n - 1)) * (W - m.left - m.right);
  const y = (v) => H - m.bottom - ((v - lo) / (hi - lo || 1)) * (H - m.top - m.bottom);
  const at = (i, v) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`;
  const offset = past.length;

  const svg = el("svg:svg", {
    viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": `history and a ${horizon}-step forecast${prefix ? ` of ${prefix.slice(0, -1)}` : ""}`,
  });
  for (const v of [lo, (lo + hi) / 2, hi]) {                           // y ticks and grid lines
    svg.append(el("svg:line", { x1: m.left, x2: W - m.right, y1: y(v), y2: y(v), class: "grid" }),
      el("svg:text", { x: m.left - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v, 1)));
  }
  bands.forEach((p, k) => {
    const lower = out[`${prefix}lower_${p}`], upper = out[`${prefix}upper_${p}`];
    const points = [...upper.map((v, i) => at(offset + i, v)),
      ...lower.map((v, i) => at(offset + i, v)).reverse()];
    svg.append(el("svg:polygon", {
      points: points.join(" "), class: "band", "data-level": p,
      "fill-opacity": 0.18 + 0.2 * k,
    }, el("svg:title", {}, `${p} % interval`)));
  });
  if (past.length) {
    svg.append(el("svg:polyline", { points: past.map((v, i) => at(i, v)).join(" "), class: "history" }));
  }
  const joined = past.length ? [at(offset - 1, past[offset - 1])] : [];
  svg.append(el("svg:polyline", {
    points: [...joined, ...forecast.map((v, i) => at(offset + i, v))].join(" "), class: "forecast",
  }));
  forecast.forEach((v, i) => svg.append(el("svg:circle", {
    cx: x(offset + i), cy: y(v), r: 3, class: "forecast-point",
  }, el("svg:title", {}, `${time[i] ?? `+${i + 1}`}: ${fmt(v, 2)}`))));
  // Date labels: the first shown, the first forecast (when not crowding the last), the last.
  const ticks = [[n - 1, time[horizon - 1]]];
  if (x(n - 1) - x(offset) > 90) ticks.unshift([offset, time[0]]);
  if (past.length) ticks.unshift([0, pastTime.slice(-past.length)[0]]);
  for (const [i, label] of ticks) {
    const anchor = i === 0 ? "start" : i === n - 1 ? "end" : "middle";
    if (label !== undefined) {
      svg.append(el("svg:text", { x: x(i), y: H - 12, "text-anchor": anchor }, String(label).slice(0, 10)));
    }
  }
  const legend = el("p", { class: "legend muted" }, el("span", { class: "key history" }), " history ",
    el("span", { class: "key forecast" }, ""), " forecast ",
    bands.map((p) => [el("span", { class: "key band" }), ` ${p} % interval `]));
  return el("figure", {}, svg, legend);
}

// Classification: the label, a bar per class and the words shaded by the attention pooling.
function classificationView(output) {
  const probabilities = Object.entries(output.probabilities).sort((a, b) => b[1] - a[1]);
  const max = output.attention ? Math.max(...output.attention, 1e-9) : 0;
  const words = output.tokens.map((piece, i) => {
    const token = piece.length > 1 ? piece.replace(/^▁/, "") : piece;  // the word mark dropped
    if (!output.attention) return el("span", { class: "word" }, token);
    const w = output.attention[i];
    const { background, color } = shade(w / max);
    return el("span", {
      class: "word shaded", "data-weight": w, title: `${token}: ${fmt(w, 4)}`, tabindex: 0,
      style: `background:${background};color:${color}`,
    }, token);
  });
  return el("div", { class: "view classification" }, el("h2", {}, "Class"),
    el("p", { class: "label" }, el("strong", { id: "label" }, output.label),
      ` ${percent(output.probabilities[output.label])}`),
    bars(probabilities.map(([name, p]) => ({ name, p }))),
    el("p", { class: "words", "aria-label": "words shaded by attention weight" },
      words.flatMap((w) => [w, " "])));
}

// Horizontal probability bars; each a button when onpick is given.
function bars(items, onpick) {
  return el("ul", { class: "bars" }, items.map((item) => {
    const inner = [el("span", { class: "bar-name" }, item.name),
      el("span", { class: "bar-track" }, el("span", { class: "bar", style: `width:${100 * item.p}%` })),
      el("span", { class: "bar-value" }, percent(item.p))];
    return el("li", {}, onpick
      ? el("button", { type: "button", class: "bar-row candidate", onclick: () => onpick(item) }, inner)
      : el("div", { class: "bar-row" }, inner));
  }));
}

// Tagging: a chip per token with its tag; the punctuated text when the tags are punctuation.
function taggingView(output) {
  // A colour per tag (grey for "O", no tag), the same tag always the same colour.
  const colour = (tag) => (tag === "O" ? "hsl(210, 8%, 60%)"
    : `hsl(${[...tag].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7)}, 55%, 42%)`);
  const chips = output.tokens.map((token, i) => el("span", {
    class: "chip", title: `${output.tags[i]} (${percent(output.probabilities[i])})`,
    style: `border-color:${colour(output.tags[i])}`,
  }, token, el("small", { style: `background:${colour(output.tags[i])}` }, output.tags[i])));
  return el("div", { class: "view tagging" }, el("h2", {}, "Tags"),
    output.text ? el("p", { class: "tagged-text" }, output.text) : null, el("p", { class: "chips" }, chips));
}

// Language model: the next-word candidates as bars (click one to append it), or generated text.
function languageModelView(output) {
  if (output.text !== undefined) {
    const prompt = output.text.startsWith(output.input) ? output.input : "";
    return el("div", { class: "view language_model" }, el("h2", {}, "Generated"),
      el("p", { class: "generated" }, el("strong", {}, prompt), output.text.slice(prompt.length)));
  }
  const pick = (item) => {
    const token = item.token;
    $("#text").value += token === "</s>" ? "\n" : token.startsWith("▁") ? ` ${item.name}` : item.name;
    predict();
  };
  return el("div", { class: "view language_model" }, el("h2", {}, "Next word"),
    el("p", { class: "muted" }, `after ${output.prompt_tokens.length} tokens; click a word to append it`),
    bars(output.candidates.map((c) => ({ name: c.text, p: c.probability, token: c.token })), pick));
}

const VIEWS = {
  translation: translationView, captioning: captioningView, forecasting: forecastingView,
  classification: classificationView, tagging: taggingView, language_model: languageModelView,
};

// ---------------------------------------------------------------------------------- wiring

function init() {
  $("#run").addEventListener("change", showControls);
  $("#request").addEventListener("submit", predict);
  $("#image").addEventListener("change", (e) => chooseImage(e.target.files[0]));
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    chooseImage(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const file = [...e.clipboardData.files].find((f) => f.type.startsWith("image/"));
    if (file && currentRun()?.input === "image") chooseImage(file);
  });
  // Ctrl+Enter in the text box sends it.
  $("#text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) predict(e);
  });
  loadRuns().catch((error) => showError(`could not list the runs: ${error.message}`));
}

document.addEventListener("DOMContentLoaded", init);
