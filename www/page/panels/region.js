// The region panel: a box, include/exclude points (each segments at once with SAM 2), SAM 2's
// automatic mask, and its runners-up to pick from.
import { $ } from "../dom.js";
import { forCurrentImage } from "../jobs.js";
import { engine } from "../session.js";
import { changed, currentMask, note, state } from "../state.js";
import { outlineOf, thumbnailOf } from "../canvas.js";

/** The segmentation shown and used (`null`: none), with its outline and what to say about it. */
export function setSegmentation(result) {
  state.segmentation = result && { ...result, outline: null };
  if (!result) {
    note("segment-result", "");
    return;
  }
  const mask = currentMask();
  state.segmentation.outline = outlineOf(mask.mask, mask.width, mask.height);
  const share = ((100 * mask.area) / (mask.width * mask.height)).toFixed(1);
  const iou = Number.isFinite(mask.predictedIou) ? `, predicted IoU ${mask.predictedIou.toFixed(3)}` : "";
  note("segment-result", `Mask: ${mask.area} px (${share} % of the image)${iou}; ${result.how}. CLIP's focus uses it.`);
}

async function segment(options, how) {
  const value = await forCurrentImage(
    { done: "A segmentation of", what: "segmentation", status: "segment-result", error: "segment-error", marker: "segmented", how },
    "segmenting",
    "region-panel",
    (progress) => engine.call("segment", { options }, { onProgress: progress }),
  );
  if (!value) return;
  const detail =
    how === "automatic"
      ? `the largest of SAM 2's ${value.candidates} automatic masks that is not the background`
      : `the best of SAM 2's ${value.candidates} candidates for the ${how}`;
  const choices = [value, ...value.alternatives];
  setSegmentation({ choices, chosen: 0, how: `${detail}${choices.length > 1 ? "; pick another below" : ""}` });
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
  canvas.addEventListener("pointerdown", (event) => {
    if (!state.image) return;
    if (tool() !== "box") {
      // A point prompt runs at once (as in SAM's own demos), when SAM 2 is there and idle.
      region.points.push([...at(event), tool() === "include" ? 1 : 0]);
      changed();
      if (state.models.sam2 && !state.busy) segment(promptOptions(), region.points.length > 1 ? "points" : "point");
      return;
    }
    start = at(event);
    region.dragging = true;
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!start) return;
    const [x, y] = at(event);
    region.box = [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)];
    changed();
  });
  canvas.addEventListener("pointerup", () => {
    if (!start) return;
    start = null;
    region.dragging = false;
    if (region.box && (region.box[2] - region.box[0] < 2 || region.box[3] - region.box[1] < 2)) region.box = null;
    changed();
  });
  $("region").addEventListener("change", () => {
    const parsed = parseBox($("region").value);
    note("segment-error", parsed === undefined ? "The box is four whole numbers: left,top,right,bottom (left < right, top < bottom)." : "");
    region.box = parsed ?? null;
    changed();
  });
  $("segment-prompt").addEventListener("click", () => segment(promptOptions(), region.points.length ? "box and points" : "box"));
  $("segment-auto").addEventListener("click", () => segment({ auto: true, pointsPerSide: Number($("auto-grid").value) }, "automatic"));
  $("region-clear").addEventListener("click", () => {
    region.box = null;
    region.points = [];
    setSegmentation(null);
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
      setSegmentation({ ...segmentation, chosen: index });
      changed();
    });
    candidates.append(button);
  });
}
