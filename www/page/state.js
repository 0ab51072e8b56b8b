// The page's one mutable state, and the one way to change it. Modules change `state` and call
// `changed()` (or a setter here that does); main.js renders the whole page from `state` once per
// change, in a microtask, so a handler never redraws by hand. The form fields the person types
// into (classes, templates, focus, …) are read where they are used: they are the person's state.
//
// State that cannot lie: each image gets a new generation, and a result computed for an earlier
// one is discarded, never drawn (see jobs.js).
import { $ } from "./dom.js";

const DEVICE_KEY = "medfocus.device";

/** The device the person chose on an earlier visit (auto when none, or storage is blocked). */
function rememberedDevice() {
  try {
    const device = localStorage.getItem(DEVICE_KEY);
    return ["auto", "gpu", "cpu"].includes(device) ? device : "auto";
  } catch {
    return "auto";
  }
}

/** Remembers the person's device choice for the next visit (a preference, not patient data). */
export function rememberDevice(device) {
  state.sources.device = device;
  try {
    localStorage.setItem(DEVICE_KEY, device);
  } catch {
    // Storage blocked (a private window's policy): the choice lasts this visit.
  }
}

export const state = {
  // What the user gave, kept to reload after an engine restart (cancel, device switch). A
  // model's source: {files: [[name, File]], label, stored (its storage manifest, when the files
  // are the stored copies), persist (store them once they load)}.
  sources: { device: rememberedDevice(), clip: null, sam2: null, head: null, image: null },
  // What the engine has loaded now (descriptions, from the worker).
  models: { device: null, clip: null, sam2: null, head: null },
  generation: 0, // bumped for every new image: results for older ones are stale
  image: null, // {name, width, height, format, pixels: ImageData}
  imageInfo: [], // [term, value] facts of the image, as decoded
  view: null, // CLIP's view of the current image and region: {generation, focus, focused, input, …}
  viewError: "", // why the last view could not be had
  // points: [x, y, label (1 include, 0 exclude)]; dragging: a box is being drawn (no view until it ends)
  // history: earlier {box, points, segmentation}, for Undo
  region: { box: null, points: [], dragging: false, history: [] },
  segmentation: null, // {choices: [mask…], chosen, how, outline: ImageData}
  lastResult: null, // the last classification (zero-shot, head or comparison), shown and exported
  busy: null, // the running job: {label, started, panel, stage, done, total, bytes}
  deviceReport: [["status", "starting…"]], // [term, value, class?] of the device the engine chose
  // Stored manifests by kind (`read`: storage was asked once), why keeping failed, whether forgotten.
  storage: { clip: null, sam2: null, head: null, read: false, error: "", forgotten: false },
  memory: null, // the engine's WebAssembly memory {live, peak, limit}
  site: { manifest: null, error: "", note: "" }, // this site's models
  bins: new Map(), // class name → File[] (the training bins), in the classes field's order
  binsChanged: 0, // bumped whenever a bin or the list of bins changes
  trainedHead: null, // {bytes, name, kind, classes}
  // The text of status and error lines, by element id (what a panel last said).
  notes: {},
};

const listeners = [];
let scheduled = false;
let marks = [];

/** Renders after the current task's changes (once, however many there were). */
export function changed() {
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    for (const listener of listeners) listener(state);
    // The end-to-end suite's markers go last: when one says a step is done, the page shows it.
    for (const [key, value] of marks) document.body.dataset[key] = value;
    marks = [];
  });
}

export function subscribe(listener) {
  listeners.push(listener);
}

/** What happened, as a `data-*` marker on <body> for the end-to-end suite (set after the render). */
export function mark(key, value) {
  marks.push([key, value]);
  changed();
}

/** A status or error line (by element id). */
export function note(id, text) {
  state.notes[id] = text;
  changed();
}

/** A new image: a new generation, and everything about the old one gone. */
export function newImage(file) {
  state.generation += 1;
  state.sources.image = file;
  state.image = null;
  state.imageInfo = [];
  state.view = null;
  state.region.box = null;
  state.region.points = [];
  state.region.history = [];
  state.segmentation = null;
  state.lastResult = null;
  changed();
  return state.generation;
}

/** The chosen mask of the segmentation, if any. */
export function currentMask() {
  return state.segmentation ? state.segmentation.choices[state.segmentation.chosen] : null;
}

export const hasRegion = () => Boolean(state.segmentation || state.region.box);

// The form: what the person typed or chose.
export const focusValue = () => $("focus").value;
export const classesValue = () => $("classes").value.split(",").map((name) => name.trim()).filter(Boolean);
export const templatesValue = () => $("templates").value.split("\n").map((line) => line.trim()).filter(Boolean);
export const needsRegion = (focus) => focus !== "none";
export const drawsIntoPixels = (focus) => !["none", "attention"].includes(focus);
