// CLIP's view of the image: the pixels its preprocessing receives under the chosen focus and
// region (the visual prompt drawn in by wasm, the same code that classifies), asked of the engine
// whenever what it depends on changes (once no job runs) — never by hand. It never locks the page.
import { Superseded } from "../engine.js";
import { message } from "./dom.js";
import { engine } from "./session.js";
import { changed, currentMask, focusValue, mark, needsRegion, state, templatesValue } from "./state.js";

/** The focus knobs and region the page would classify with now. */
export function focusOptions(focus = focusValue()) {
  const options = { focus, templates: templatesValue() };
  const mask = currentMask();
  if (needsRegion(focus)) {
    if (mask) options.mask = mask.maskPng;
    else if (state.region.box) options.box = state.region.box;
  }
  return options;
}

let asked = null; // what the last view was asked for
let requests = 0;

const inputsNow = () => ({
  generation: state.generation,
  image: state.image,
  focus: focusValue(),
  clip: state.models.clip,
  segmentation: state.segmentation,
  // A mask wins over the box: a box drawn beside a mask does not change the view.
  box: state.segmentation ? "" : (state.region.box?.join(",") ?? ""),
});

const same = (a, b) => Object.keys(a).every((key) => a[key] === b[key]);

/**
 * Asks for a new view when the image, focus, region or CLIP model changed — not mid-drag, and not
 * while a job runs (a restart reloads the models and the image in steps; the view waits for all).
 */
export function syncView() {
  if (state.region.dragging || state.busy) return;
  // A mask found by a head's classification is being encoded (panels/classify.js): wait for it.
  if (needsRegion(focusValue()) && currentMask() && !currentMask().maskPng) return;
  const inputs = inputsNow();
  if (asked && same(inputs, asked)) return;
  asked = inputs;
  fetchView(inputs);
}

async function fetchView(inputs) {
  const request = ++requests;
  const { focus, generation } = inputs;
  state.viewError = "";
  if (!state.image || !state.models.clip || (needsRegion(focus) && !currentMask() && !state.region.box)) {
    state.view = null;
    changed();
    return;
  }
  try {
    const answer = await engine.call("view", { options: focusOptions(focus) });
    if (request !== requests || generation !== state.generation) return; // superseded by a newer view
    state.view = {
      generation,
      focus,
      focused: new ImageData(new Uint8ClampedArray(answer.focused.buffer), answer.width, answer.height),
      input: new ImageData(new Uint8ClampedArray(answer.input.buffer), answer.inputSize, answer.inputSize),
      inputSize: answer.inputSize,
      crop: [...answer.crop],
      grid: answer.grid,
      patchWeights: answer.patchWeights,
    };
    mark("view", `${state.image.name}:${focus}`);
  } catch (error) {
    if (request !== requests || error instanceof Superseded) return;
    state.view = null;
    state.viewError = `CLIP's view: ${message(error)}`;
  }
  changed();
}
