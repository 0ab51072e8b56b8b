// The region panel: a box, include/exclude points (each segments at once with SAM 2), SAM 2's
// automatic mask, its runners-up to pick from, and Undo (each change of the region kept).
import { $ } from "../dom.js";
import { forCurrentImage } from "../jobs.js";
import { engine } from "../session.js";
import { changed, currentMask, note, state } from "../state.js";
import { outlineOf, thumbnailOf } from "../canvas.js";

/** What the chosen mask is, in words: the pick's own description once a runner-up is chosen. */
function describe({ choices, chosen, best, pool }) {
  const others = choices.length > 1 ? "; pick another below" : "";
  if (chosen === 0 || !pool) return `${best}${others}`;
  return `candidate ${chosen + 1} of ${pool}, picked by hand${others}`;
}

/**
 * The segmentation shown and used (`null`: none): `{choices, chosen, best (what the first
 * choice is), pool (what the choices are, when there are several)}`, given its outline and
 * `how` (what the status line and the result file say about the chosen mask).
 */
export function setSegmentation(result) {
  state.segmentation = result && { ...result, outline: null, how: describe(result) };
  if (!result) {
    note("segment-result", "");
    return;
  }
  const mask = currentMask();
  state.segmentation.outline = outlineOf(mask.mask, mask.width, mask.height);
  const share = ((100 * mask.area) / (mask.width * mask.height)).toFixed(1);
  const iou = Number.isFinite(mask.predictedIou) ? `, predicted IoU ${mask.predictedIou.toFixed(3)}` : "";
  note("segment-result", `Mask: ${mask.area} px (${share} % of the image)${iou}; ${state.segmentation.how}. CLIP's focus uses it.`);
}

async function segment(options, how) {
  const value = await forCurrentImage(
    { done: "A segmentation of", what: "segmentation", status: "segment-result", error: "segment-error", marker: "segmented", how },
    "segmenting",
    "region-panel",
    (progress) => engine.call("segment", { options }, { onProgress: progress }),
  );
  if (!value) return;
  const pool = how === "automatic" ? `SAM 2's ${value.candidates} automatic masks` : `SAM 2's ${value.candidates} candidates for the ${how}`;
  const best = how === "automatic" ? `the largest of ${pool} that is not the background` : `the best of ${pool}`;
  setSegmentation({ choices: [value, ...value.alternatives], chosen: 0, best, pool });
}

function promptOptions() {
  const { region } = state;
  const options = {
    points: region.points.filter(([, , label]) => label).map(([x, y]) => [x, y]),
    background: region.points.filter(([, , label]) => !label).map(([x, y]) => [x, y]),
  };
  if (region.box) options.box = region.box;
  return options;
}

/** Keeps the region as it is now, for Undo (a step back per press, drag, typed box or Clear). */
function remember() {
  const { region } = state;
  region.history.push({ box: region.box, points: [...region.points], segmentation: state.segmentation });
  if (region.history.length > 100) region.history.shift();
}

/** Undo: the region, its points and its mask as they were before the last change. */
function undo() {
  const earlier = state.region.history.pop();
  if (!earlier) return;
  state.region.box = earlier.box;
  state.region.points = earlier.points;
  note("segment-error", "");
  setSegmentation(earlier.segmentation && { ...earlier.segmentation });
  changed();
}

/** With SAM 2 loaded (and nothing running), a new box or point segments at once (`how`: what
 * was just given, for the words and the end-to-end marker). */
function segmentNow(how) {
  if (state.models.sam2 && !state.busy && state.image) segment(promptOptions(), how);
}

function parseBox(text) {
  if (!text.trim()) return null;
  const values = text.split(",").map((v) => Number(v.trim()));
  return values.length === 4 && values.every(Number.isInteger) && values[0] < values[2] && values[1] < values[3] ? values : undefined;
}

export function wireRegion() {
  const canvas = $("overlay-canvas");
  const { region } = state;
  let start = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    const x = Math.round(((event.clientX - box.left) / box.width) * canvas.width);
    const y = Math.round(((event.clientY - box.top) / box.height) * canvas.height);
    return [Math.min(Math.max(x, 0), canvas.width), Math.min(Math.max(y, 0), canvas.height)];
  };
  const tool = () => document.querySelector("input[name=tool]:checked").value;
  let moved = false;
  canvas.addEventListener("pointerdown", (event) => {
    if (!state.image || state.busy) return;
    remember();
    if (tool() !== "box") {
      const [x, y] = at(event);
      // A press on a point removes it (as in SAM's own demos); elsewhere it adds one. Either
      // runs at once, when SAM 2 is there and idle.
      const reach = (10 * canvas.width) / canvas.getBoundingClientRect().width;
      const hit = region.points.findIndex(([px, py]) => Math.hypot(px - x, py - y) <= reach);
      if (hit >= 0) region.points.splice(hit, 1);
      else region.points.push([x, y, tool() === "include" ? 1 : 0]);
      changed();
      if (region.points.length || region.box) segmentNow(region.points.length > 1 ? "points" : region.points.length ? "point" : "box");
      else setSegmentation(null);
      return;
    }
    start = at(event);
    moved = false;
    region.dragging = true;
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!start) return;
    const [x, y] = at(event);
    moved = true;
    region.box = [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)];
    changed();
  });
  canvas.addEventListener("pointerup", () => {
    if (!start) return;
    start = null;
    region.dragging = false;
    const box = region.box;
    if (!moved || !box || box[2] - box[0] < 2 || box[3] - box[1] < 2) {
      // A press without a real drag: the region as it was, and nothing to undo.
      region.box = region.history.pop()?.box ?? null;
      changed();
      return;
    }
    changed();
    // A box segments as soon as it is drawn, as a point does.
    segmentNow(region.points.length ? "box and points" : "box");
  });
  // Ctrl+Z (⌘Z) steps back, unless the person is typing in a field.
  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.shiftKey || event.key.toLowerCase() !== "z") return;
    if (["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName)) return;
    if (state.busy || !region.history.length) return;
    event.preventDefault();
    undo();
  });
  $("region").addEventListener("change", () => {
    remember();
    const parsed = parseBox($("region").value);
    note("segment-error", parsed === undefined ? "The box is four whole numbers: left,top,right,bottom (left < right, top < bottom)." : "");
    region.box = parsed ?? null;
    changed();
  });
  $("segment-prompt").addEventListener("click", () => segment(promptOptions(), region.points.length ? "box and points" : "box"));
  $("segment-auto").addEventListener("click", () => segment({ auto: true, pointsPerSide: Number($("auto-grid").value) }, "automatic"));
  $("region-undo").addEventListener("click", undo);
  $("region-clear").addEventListener("click", () => {
    remember();
    region.box = null;
    region.points = [];
    setSegmentation(null);
    // What was said about the cleared region goes with it.
    note("segment-error", "");
    changed();
  });
}

let shownCandidates = null; // the segmentation whose candidates are drawn

/** The box field (unless the person is typing in it) and SAM 2's candidates. */
export function renderRegion({ region, segmentation }) {
  const field = $("region");
  if (document.activeElement !== field) field.value = region.box ? region.box.join(",") : "";
  if (segmentation === shownCandidates) return;
  shownCandidates = segmentation;
  const candidates = $("candidates");
  candidates.replaceChildren();
  if (!segmentation || segmentation.choices.length < 2) return;
  segmentation.choices.forEach((choice, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-pressed", String(index === segmentation.chosen));
    button.title = `candidate ${index + 1}: ${choice.area} px`;
    button.append(thumbnailOf(choice));
    const label = document.createElement("span");
    label.textContent = `${index + 1}: ${((100 * choice.area) / (choice.width * choice.height)).toFixed(1)} %`;
    button.append(label);
    button.addEventListener("click", () => {
      remember();
      setSegmentation({ ...segmentation, chosen: index });
      changed();
    });
    candidates.append(button);
  });
}
