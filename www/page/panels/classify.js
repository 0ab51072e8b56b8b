// The classify panel: zero-shot classes under a focus, every focus side by side, the loaded head
// focused as it was trained; where the model looked (a heat-map of one class's score, drawn over
// the image by canvas.js); the results, and the mask and result as downloads.
import { $, download } from "../dom.js";
import { forCurrentImage } from "../jobs.js";
import { engine } from "../session.js";
import { changed, classesValue, currentMask, focusValue, mark, note, state, templatesValue } from "../state.js";
import { maskPng } from "../canvas.js";
import { focusOptions } from "../view.js";
import { setSegmentation } from "./region.js";

const classifying = (how) => ({ done: "A result for", what: "classification", status: "classify-status", error: "classify-error", marker: "classified", how });

/** `options.explain` for the method and class chosen, or nothing when it is off
 * (`relevancy-all`: relevancy propagated from the first block instead of the last alone). */
function explainOptions(classes) {
  const chosen = $("explain-method").value;
  if (chosen === "off") return undefined;
  const options = chosen === "relevancy-all" ? { method: "relevancy", startBlock: 0 } : { method: chosen };
  const index = classes.indexOf($("explain-class").value);
  return index >= 0 ? { ...options, class: index } : options;
}

/** The end-to-end suite's marker of an explanation drawn: image, method and class. */
function markExplained(result) {
  const explanation = result.explanation;
  if (explanation) mark("explained", `${state.image.name}:${explanation.method}:${result.classes[explanation.class]}`);
}

function regionSummary(result) {
  if (!result.region) return "the whole image";
  const share = `${(100 * result.region.coverage).toFixed(1)} % of the image`;
  return `a region from ${result.region.origin} (${share})`;
}

/** The region a classification is sent (its `options`), as the result file records it: what
 * was used, not what the page shows later. `null`: the whole image. */
function regionGiven(options) {
  if (options.mask) {
    const mask = currentMask();
    const points = state.region.points.map(([x, y, label]) => ({ x, y, include: Boolean(label) }));
    return { mask: { area: mask.area, how: state.segmentation.how, box: state.region.box, points } };
  }
  return options.box ? { box: options.box } : null;
}

/** The templates a zero-shot classification used: the person's, else the model's defaults. */
const templatesUsed = () => (templatesValue().length ? templatesValue() : state.models.clip.defaultTemplates);

async function classify() {
  const focus = focusValue();
  const classes = classesValue();
  const options = { ...focusOptions(focus), explain: explainOptions(classes) };
  note("classify-status", "");
  const result = await forCurrentImage(classifying(focus), "classifying", "classify-panel", (progress) =>
    engine.call("classify", { classes, options }, { onProgress: progress }),
  );
  if (!result) return;
  note("classify-status", `Zero-shot, ${focus} focus on ${regionSummary(result)}.`);
  state.lastResult = { kind: "zero-shot", focus, result, region: result.region, given: regionGiven(options), templates: templatesUsed() };
  changed();
  markExplained(result);
}

async function compare() {
  const classes = classesValue();
  const withRegion = Boolean(currentMask() || state.region.box);
  const focuses = withRegion ? ["none", "overlay", "attention", "blur", "crop"] : ["none"];
  const options = focusOptions("overlay");
  delete options.focus;
  note("classify-status", "");
  const results = await forCurrentImage(classifying("compare"), "comparing focus modes", "classify-panel", (progress) =>
    engine.call("compare", { classes, focuses, options }, { onProgress: progress }),
  );
  if (!results) return;
  note(
    "classify-status",
    withRegion
      ? "The same image and region under each focus mode (bold: the top class)."
      : "Only the none focus without a region: drag a box or segment to compare the others.",
  );
  const failed = results.filter(({ error }) => error);
  if (failed.length) note("classify-error", failed.map(({ focus, error }) => `${focus}: ${error}`).join("; "));
  const given = regionGiven(focusOptions("overlay"));
  state.lastResult = { kind: "comparison", classes, results, region: results.find(({ result }) => result?.region)?.result.region, given, templates: templatesUsed() };
  changed();
}

async function classifyWithHead() {
  const head = state.models.head;
  const onSam2 = Boolean(head.automatic);
  const options = focusOptions(head.focus);
  delete options.focus;
  delete options.templates;
  options.explain = explainOptions(head.classes);
  note("classify-status", "");
  const result = await forCurrentImage(classifying("head"), "classifying with the head", "classify-panel", (progress) =>
    engine.call("classifyWithHead", { options, onSam2 }, { onProgress: progress }),
  );
  if (!result) return;
  let said = `${head.kind} head, ${head.focus} focus on ${regionSummary(result)}.`;
  if (result.region?.warning) said += ` ${result.region.warning}.`;
  note("classify-status", said);
  // A head on SAM 2 finds its own region (drawn below); otherwise it used the one it was sent.
  state.lastResult = { kind: "head", head, result, region: result.region, given: onSam2 ? null : regionGiven(options), templates: null };
  changed();
  markExplained(result);
  if (result.region?.mask) {
    // The region SAM 2 found with the head's own settings: shown, and the one exported.
    const { width, height } = state.image;
    const area = result.region.mask.reduce((sum, value) => sum + (value ? 1 : 0), 0);
    const choice = { width, height, area, predictedIou: NaN, mask: result.region.mask, maskPng: null };
    setSegmentation({
      choices: [choice],
      chosen: 0,
      best: result.region.origin === "whole-image" ? "the whole image (SAM 2 found no region with the head's settings)" : "SAM 2's automatic mask with the head's settings",
    });
    // As a PNG it is a region like any other: CLIP's view and a zero-shot classification use it.
    const png = new Uint8Array(await (await maskPng(choice)).arrayBuffer());
    if (state.segmentation?.choices[0] === choice) {
      choice.maskPng = png;
      state.segmentation = { ...state.segmentation };
      changed();
    }
  }
}

const baseName = () => state.image.name.replace(/\.[^.]+$/, "");

async function exportMask() {
  download(await maskPng(currentMask()), `${baseName()}_mask.png`);
}

function exportResult() {
  const { image, models, lastResult } = state;
  const report = {
    medfocus: "page",
    notice: "research use only, not for diagnosis",
    created: new Date().toISOString(),
    image: { name: image.name, format: image.format, width: image.width, height: image.height },
    device: models.device?.backend,
    // The checkpoint by name and content: the folder's name and every file's SHA-256.
    clip: models.clip && { name: models.clip.name, family: models.clip.family, imageSize: models.clip.imageSize, files: models.clip.files },
    sam2: models.sam2 ? { name: models.sam2.name, weights: models.sam2.weights } : null,
    // What this result was computed on: the region it was given (null: the whole image) and the
    // one the focus used; not what the page shows since.
    region: {
      given: lastResult.given ?? null,
      used: lastResult.region ? { origin: lastResult.region.origin, coverage: lastResult.region.coverage, warning: lastResult.region.warning } : null,
    },
    classes: lastResult.classes ?? lastResult.result.classes,
    // A head carries its own class texts: no templates then.
    templates: lastResult.templates,
  };
  if (lastResult.kind === "comparison") {
    report.comparison = lastResult.results.map(({ focus, result, error }) => ({ focus, probabilities: result?.probabilities, error }));
  } else {
    report.kind = lastResult.kind;
    report.focus = lastResult.kind === "head" ? lastResult.head.focus : lastResult.focus;
    if (lastResult.kind === "head") report.head = { kind: lastResult.head.kind, clip: lastResult.head.clipName, masks: lastResult.head.masks };
    report.classes = lastResult.result.classes;
    report.probabilities = lastResult.result.probabilities;
    const explanation = lastResult.result.explanation;
    if (explanation) {
      // What the heat-map shown was made of: the method, the class and the raw patch map.
      report.explanation = {
        method: explanation.method,
        class: lastResult.result.classes[explanation.class],
        grid: explanation.grid,
        patch_map: [...explanation.patchMap],
      };
    }
  }
  download(new Blob([JSON.stringify(report, null, 2)], { type: "application/json" }), `${baseName()}_medfocus.json`);
}

/** A new method or class asks the last classification again, now explained that way (or
 * without the heat-map, when it was turned off; nothing to do when none was asked or shown). */
function explainAgain() {
  changed();
  if (state.busy || !state.image) return;
  if ($("explain-method").value === "off" && !state.lastResult?.result?.explanation) return;
  if (state.lastResult?.kind === "zero-shot") classify();
  else if (state.lastResult?.kind === "head") classifyWithHead();
}

export function wireClassify() {
  $("explain-method").addEventListener("change", explainAgain);
  $("explain-class").addEventListener("change", explainAgain);
  $("heat-opacity").addEventListener("input", changed);
  $("classify").addEventListener("click", classify);
  $("compare").addEventListener("click", compare);
  $("classify-head").addEventListener("click", classifyWithHead);
  $("export-mask").addEventListener("click", exportMask);
  $("export-result").addEventListener("click", exportResult);
}

function cell(tag, text, className) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

/** One result's classes, most likely first, with bars. */
function resultRows(result) {
  const rows = result.classes.map((name, index) => [name, result.probabilities[index]]);
  rows.sort((a, b) => b[1] - a[1]);
  return rows.map(([name, probability], rank) => {
    const row = document.createElement("tr");
    if (rank === 0) row.className = "top";
    const bar = document.createElement("td");
    const fillBar = document.createElement("span");
    fillBar.className = "bar";
    fillBar.style.width = `${Math.round(probability * 160)}px`;
    bar.append(fillBar);
    row.append(cell("td", name), cell("td", `${(probability * 100).toFixed(2)} %`), bar);
    return row;
  });
}

/** Each focus's probabilities per class, side by side (bold: each focus's top class). */
function comparisonRows({ classes, results }) {
  const head = document.createElement("tr");
  head.append(...["class", ...results.map(({ focus }) => focus)].map((text) => cell("th", text)));
  const rows = classes.map((name, index) => {
    const row = document.createElement("tr");
    row.append(cell("td", name));
    for (const { result, error } of results) {
      if (result) {
        const p = result.probabilities[index];
        row.append(cell("td", `${(p * 100).toFixed(1)} %`, p === Math.max(...result.probabilities) ? "best" : ""));
      } else {
        const missing = cell("td", "—");
        missing.title = error;
        row.append(missing);
      }
    }
    return row;
  });
  return [head, ...rows];
}

/** The classes a heat-map can be asked for: the last result's, else the classes typed. */
function renderExplainClasses(lastResult) {
  const classes = lastResult?.result?.classes ?? classesValue();
  const select = $("explain-class");
  const offered = [...select.options].slice(1).map((option) => option.value);
  if (offered.join("\n") === classes.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(new Option("the predicted class", ""), ...classes.map((name) => new Option(name, name)));
  select.value = classes.includes(chosen) ? chosen : "";
}

/** What the heat-map over the image shows, and its opacity control while one is shown. */
function renderHeatCaption(lastResult) {
  const explanation = lastResult?.kind !== "comparison" ? lastResult?.result?.explanation : null;
  $("heat-controls").hidden = !explanation;
  if (!explanation) {
    $("heat-caption").textContent = "";
    return;
  }
  const how =
    explanation.method === "relevancy"
      ? `attention relevancy (Chefer et al.) ${$("explain-method").value === "relevancy-all" ? "through every block" : "of the last block"}`
      : "dense patch scores (MaskCLIP)";
  const unseen = explanation.heat.some(Number.isNaN) ? " Darkened parts of the image were not seen by the model (the crop)." : "";
  $("heat-caption").textContent =
    `Where the model looked for “${lastResult.result.classes[explanation.class]}”: ${how} on a ${explanation.grid} × ${explanation.grid} patch grid, scaled from its lowest (blue) to its highest (red).${unseen}`;
}

let shown = null; // the result drawn now

export function renderClassify({ lastResult, models }) {
  // An empty templates field means the model's defaults: show them, not an example.
  const defaults = models.clip?.defaultTemplates?.join("\n") ?? "";
  if (defaults && $("templates").placeholder !== defaults) $("templates").placeholder = defaults;
  renderExplainClasses(lastResult);
  renderHeatCaption(lastResult);
  if (lastResult === shown) return;
  shown = lastResult;
  const comparison = lastResult?.kind === "comparison";
  $("results").replaceChildren(...(lastResult && !comparison ? resultRows(lastResult.result) : []));
  $("comparison").replaceChildren(...(comparison ? comparisonRows(lastResult) : []));
}

