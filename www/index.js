// The page: draws and takes input. Every piece of model work (decoding, SAM 2, CLIP, heads) runs
// in the engine's Web Worker (www/worker.js through www/engine.js), so this thread never blocks.
// Nothing is sent anywhere: files are read and computed on in this tab.
//
// State that cannot lie: one job runs at a time and the panels that could start another are
// locked meanwhile; each image gets a new generation, and a result computed for an earlier one
// is discarded, never drawn; a device switch or a cancel restarts the engine and reloads every
// model from the files the user gave; a head's recorded mask settings are used as recorded.
// Models that loaded are kept in this browser's storage (the worker's OPFS store) and come back
// on the next visit, checked; the class bins hold files only, the engine embeds them per Train.
import { Engine, Superseded } from "./engine.js";

const $ = (id) => document.getElementById(id);
const engine = new Engine();

// What the user gave, kept to reload after an engine restart (cancel, device switch).
// A model's source: {files: [[name, File]], label, stored (its storage manifest, when the files
// are the stored copies), persist (store them once they load)}.
const sources = { device: "auto", clip: null, sam2: null, head: null, image: null };
// What the engine has loaded now (descriptions, from the worker).
const models = { device: null, clip: null, sam2: null, head: null };

let generation = 0; // bumped for every new image: results for older ones are stale
let image = null; // {name, width, height, pixels: ImageData, facts}
let view = null; // CLIP's view of the current image and region: {generation, key, focused, input, …}
let viewRequest = 0;
const region = { box: null, points: [] }; // points: [x, y, label (1 include, 0 exclude)]
let segmentation = null; // {choices: [mask…], chosen, how, outline: ImageData}
let lastResult = null; // the last classification, for the JSON export
let busy = null; // {label, started, panel}
let jobSettled = Promise.resolve(); // settles when the running job has cleaned up

// ---------------------------------------------------------------------------------------------
// Small helpers

function fill(list, entries) {
  list.replaceChildren();
  for (const [term, value, cls] of entries) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (cls) dd.className = cls;
    list.append(dt, dd);
  }
}

const mib = (bytes) => `${Math.round(bytes / 1048576)} MiB`;
const megabytes = (bytes) => (bytes < 1e5 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`);
const message = (error) => error?.message ?? String(error);
const classesValue = () => $("classes").value.split(",").map((name) => name.trim()).filter(Boolean);
const templatesValue = () => $("templates").value.split("\n").map((line) => line.trim()).filter(Boolean);
const needsRegion = (focus) => focus !== "none";
const drawsIntoPixels = (focus) => !["none", "attention"].includes(focus);

// ---------------------------------------------------------------------------------------------
// Jobs: one at a time, with progress, elapsed time and a cancel.

let busyTimer = null;

function showBusy() {
  const bar = $("busy");
  bar.classList.toggle("shown", Boolean(busy));
  document.body.dataset.busy = busy ? "1" : "";
  for (const section of document.querySelectorAll("section")) section.removeAttribute("aria-busy");
  clearInterval(busyTimer);
  if (!busy) return;
  $(busy.panel)?.setAttribute("aria-busy", "true");
  $("busy-label").textContent = busy.stage ? `${busy.label}: ${busy.stage}` : busy.label;
  const tick = () => ($("busy-time").textContent = `${((performance.now() - busy.started) / 1000).toFixed(1)} s`);
  tick();
  busyTimer = setInterval(tick, 250);
}

function onProgress(report) {
  if (!busy) return;
  busy.stage = report.stage;
  $("busy-label").textContent = `${busy.label}: ${report.stage}`;
  const progress = $("busy-progress");
  if (report.total) {
    progress.hidden = false;
    progress.max = report.total;
    progress.value = report.done ?? 0;
    // Files: how many bytes of how many (downloads, and reading models from storage).
    if (report.bytes || report.total > 1 << 20) {
      progress.title = `${megabytes(report.done ?? 0)} of ${megabytes(report.total)}`;
      $("busy-label").textContent += ` — ${progress.title}`;
    }
  } else {
    progress.hidden = true;
  }
}

/** Runs `work(onProgress)` as the one job; resolves to `{value, stale}` (stale: the image changed). */
async function job(label, panel, work) {
  if (busy) throw new Error(`busy: ${busy.label}`);
  const startedFor = generation;
  let release;
  jobSettled = new Promise((resolve) => (release = resolve));
  busy = { label, started: performance.now(), panel };
  $("busy-progress").hidden = true;
  showBusy();
  updateControls();
  try {
    const value = await work(onProgress);
    return { value, stale: startedFor !== generation };
  } catch (error) {
    if (error.fatal) setTimeout(() => restartEngine("after an internal error in the engine", "was stopped by an internal error"), 0);
    throw error;
  } finally {
    busy = null;
    showBusy();
    updateControls();
    release();
    showMemory(); // the peak moves with the work, not only with the models
  }
}

function updateControls() {
  const idle = !busy;
  const ready = Boolean(models.device);
  const hasImage = Boolean(image);
  const hasRegion = Boolean(segmentation || region.box);
  const focus = $("focus").value;
  $("device-request").disabled = !idle;
  $("device-check").disabled = !(idle && ready);
  for (const id of ["model-input", "sam2-input", "head-input"]) $(id).disabled = !(idle && ready);
  $("segment-prompt").disabled = !(idle && models.sam2 && hasImage && (region.box || region.points.length));
  $("segment-auto").disabled = !(idle && models.sam2 && hasImage);
  $("region-clear").disabled = !(idle && (hasRegion || region.points.length));
  $("classify").disabled = !(idle && models.clip && hasImage && (!needsRegion(focus) || hasRegion));
  $("compare").disabled = !(idle && models.clip && hasImage);
  const headRegion = !models.head?.needsMask || models.head?.automatic ? true : hasRegion;
  $("classify-head").disabled = !(idle && models.clip && models.head && hasImage && headRegion);
  $("export-mask").disabled = !segmentation;
  $("export-result").disabled = !lastResult;
  const names = classesValue();
  const empty = names.filter((name) => !bins.get(name)?.length);
  const trainable = names.length >= 2 && !empty.length;
  $("train").disabled = !(idle && models.clip && trainable && (!needsRegion(focus) || models.sam2));
  $("train").title = !models.clip
    ? "load a CLIP model first"
    : names.length < 2
      ? "name at least two classes"
      : empty.length
        ? `every class needs images; empty: ${empty.join(", ")}`
        : needsRegion(focus) && !models.sam2
          ? `the ${focus} focus trains on SAM 2's automatic masks: load SAM 2, or choose the focus none`
          : "";
  $("forget-models").disabled = !idle || !(storage.clip || storage.sam2 || storage.head);
  $("site-download").disabled = !(idle && ready && missingFromSite().length);
  $("site-check").disabled = !(idle && ready);
  $("export-head").disabled = !trainedHead;
  for (const button of document.querySelectorAll("#bins button")) button.disabled = !idle || button.dataset.empty === "1";
  for (const button of document.querySelectorAll("#candidates button")) button.disabled = !idle;
}

// ---------------------------------------------------------------------------------------------
// The engine: device and models, reloaded whenever it restarts.

async function initDevice() {
  fill($("device-report"), [["status", "choosing…"]]);
  $("device-check-result").textContent = "";
  try {
    const report = await engine.call("init", { request: sources.device });
    models.device = report;
    const entries = [["backend", report.backend], ["kind", report.kind]];
    if (report.adapter) {
      const { adapter } = report;
      entries.push(
        ["adapter", adapter.name],
        ["max buffer", mib(adapter.limits.max_buffer_size)],
        ["max storage binding", mib(adapter.limits.max_storage_buffer_binding_size)],
        ["workgroup storage", `${adapter.limits.max_compute_workgroup_storage_size / 1024} KiB`],
        ["shader-f16", adapter.limits.shader_f16 ? "yes" : "no"],
      );
    }
    entries.push(["why", report.reason]);
    for (const warning of report.warnings) entries.push(["warning", warning, "warning"]);
    fill($("device-report"), entries);
    document.body.dataset.device = report.backend;
  } catch (error) {
    models.device = null;
    fill($("device-report"), [["error", message(error), "error"]]);
    document.body.dataset.device = "error";
    if (error instanceof Superseded) throw error;
  }
}

const loaders = {
  async clip(progress) {
    $("clip-error").textContent = "";
    $("model-status").textContent = "loading…";
    models.clip = null;
    const started = performance.now();
    try {
      models.clip = await engine.call("loadClip", takeSource("clip"), { onProgress: progress });
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      $("model-status").textContent = `${models.clip.family} model${origin("clip")} loaded on ${models.device.backend} (${models.clip.imageSize} px input) in ${seconds} s.`;
      kept("clip", models.clip);
      document.body.dataset.model = models.clip.family;
    } catch (error) {
      if (error instanceof Superseded) throw error;
      sources.clip = null;
      $("model-status").textContent = "No CLIP model.";
      $("clip-error").textContent = `CLIP model: ${message(error)}`;
      document.body.dataset.model = "error";
    }
  },

  async sam2(progress) {
    $("sam2-error").textContent = "";
    $("sam2-status").textContent = "loading…";
    models.sam2 = null;
    const started = performance.now();
    try {
      models.sam2 = await engine.call("loadSam2", takeSource("sam2"), { onProgress: progress });
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      $("sam2-status").textContent = `${models.sam2.name}${origin("sam2")} loaded on ${models.device.backend} (${models.sam2.weights} weights, ${megabytes(models.sam2.bytes)}) in ${seconds} s.`;
      kept("sam2", models.sam2);
      document.body.dataset.sam2 = models.sam2.weights;
    } catch (error) {
      if (error instanceof Superseded) throw error;
      sources.sam2 = null;
      $("sam2-status").textContent = "No SAM 2 model.";
      $("sam2-error").textContent = `SAM 2: ${message(error)}`;
      document.body.dataset.sam2 = "error";
    }
  },

  async head(progress) {
    $("head-error").textContent = "";
    models.head = null;
    try {
      const head = await engine.call("loadHead", takeSource("head"), { onProgress: progress });
      models.head = head;
      let region = "the whole image";
      if (head.automatic) {
        const grid = head.automatic.points_per_side;
        const round = (value) => Number(value.toFixed(3));
        region = `SAM 2's automatic masks as in its training (${grid}×${grid} points, predicted IoU > ${round(head.automatic.pred_iou_thresh)}, stability ≥ ${round(head.automatic.stability_score_thresh)}, the whole image when none qualifies) — needs SAM 2`;
      } else if (head.needsMask) {
        region = "a region (box or mask) you give";
      }
      kept("head", head);
      $("head-status").textContent = `${head.kind} head${origin("head")} for ${head.classes.join(", ")}; focus ${head.focus}, on ${region}; trained on CLIP model ${head.clipName}.`;
      document.body.dataset.head = head.kind;
    } catch (error) {
      if (error instanceof Superseded) throw error;
      sources.head = null;
      $("head-status").textContent = "No head.";
      $("head-error").textContent = `head: ${message(error)}`;
      document.body.dataset.head = "error";
    }
  },
};

/**
 * Starts the engine on the chosen device, or restarts it (`reason`), ending whatever runs (the
 * job's promise rejects with `Superseded(superseded)`), and reloads every model given so far.
 */
async function restartEngine(reason, superseded) {
  if (reason) {
    engine.restart(superseded);
    await jobSettled;
  }
  models.device = models.clip = models.sam2 = models.head = null;
  view = null;
  draw();
  document.body.dataset.engine = "starting";
  try {
    await job(reason ? `restarting the engine ${reason}` : "starting the engine", "models-panel", async (progress) => {
      await initDevice();
      if (!models.device) return;
      if (!reason) {
        await restoreStored(progress);
        await checkSite(false, progress);
      }
      for (const kind of ["clip", "sam2", "head"]) if (sources[kind]) await loaders[kind](progress);
      // The worker lost the image with everything else: hand it the same file again.
      if (sources.image && image) await engine.call("decode", { file: sources.image }, { onProgress: progress });
    });
  } catch (error) {
    if (!(error instanceof Superseded)) fill($("device-report"), [["error", message(error), "error"]]);
  }
  document.body.dataset.engine = "ready";
  refreshView();
}

async function userLoad(kind, given) {
  sources[kind] = { ...given, stored: null, persist: true };
  try {
    await job(`loading the ${kind === "clip" ? "CLIP model" : kind === "sam2" ? "SAM 2 model" : "head"}`, "models-panel", loaders[kind]);
  } catch (error) {
    if (!(error instanceof Superseded)) $(`${kind === "clip" ? "clip" : kind === "sam2" ? "sam2" : "head"}-error`).textContent = message(error);
  }
  if (kind === "clip") refreshView();
  updateControls();
}

// A picked folder as [[relative path, File]]: a PyTorch pickle is skipped when the SafeTensors
// file is there (the browser reads only SafeTensors), download leftovers always.
function clipFiles(files) {
  const entries = [...files].map((file) => {
    const path = file.webkitRelativePath || file.name;
    return [path.includes("/") ? path.slice(path.indexOf("/") + 1) : path, file];
  });
  const names = new Set(entries.map(([name]) => name));
  const first = files[0]?.webkitRelativePath ?? "";
  return {
    // The folder's name: what native heads record as the CLIP model's name.
    label: first.includes("/") ? first.slice(0, first.indexOf("/")) : "browser",
    files: entries.filter(([name]) => {
      if (/\.(part|sha256)$/.test(name)) return false;
      if (name.endsWith(".bin") && names.has(name.replace(/_pytorch_model\.bin$/, "_model.safetensors"))) return false;
      return true;
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Storage: models that loaded are kept in this browser (the worker's OPFS store, checked by
// SHA-256 on every load from it); a later visit loads them without asking.

const storage = { clip: null, sam2: null, head: null, usage: null, error: "" }; // manifests

/** The request for a load: a restart reloads without storing again. */
function takeSource(kind) {
  const { files, label, stored, persist } = sources[kind];
  return { files, label, stored, persist };
}

const origin = (kind) => {
  const stored = sources[kind]?.stored;
  if (!stored) return "";
  return stored.source === "site" ? " (this site's, kept in this browser)" : " (from this browser's storage)";
};

/** Notes where a loaded model's files are kept now. */
function kept(kind, answer) {
  if (sources[kind]) sources[kind].persist = false; // stored (or tried): a reload does not again
  if (answer.manifest) storage[kind] = answer.manifest;
  storage.error = answer.storeError ? `Could not keep the ${kind} files in this browser: ${answer.storeError}` : "";
  showStorage();
  showSite();
  showMemory();
}

/** The engine's WebAssembly memory: what the models hold of the 4 GiB a page may have. */
async function showMemory() {
  try {
    const memory = await engine.call("memory");
    $("memory-status").textContent = `Engine memory: ${mib(memory.live)} in use, ${mib(memory.peak)} at the peak, of the ${mib(memory.limit)} a page's WebAssembly memory can hold.`;
    document.body.dataset.memory = JSON.stringify(memory);
  } catch {
    // A restart is under way; the next load reports again.
  }
}

function showStorage() {
  const names = { clip: "CLIP", sam2: "SAM 2", head: "head" };
  const parts = ["clip", "sam2", "head"].filter((kind) => storage[kind]).map((kind) => {
    const bytes = storage[kind].files.reduce((sum, file) => sum + file.size, 0);
    return `${names[kind]} ${storage[kind].label} (${megabytes(bytes)})`;
  });
  $("storage-status").textContent = parts.length
    ? `Kept in this browser, checked by SHA-256 when loaded: ${parts.join(", ")}. The next visit loads them without asking.`
    : "Nothing kept in this browser: models you load are kept here (never uploaded) for the next visit.";
  if (storage.error) $("storage-status").textContent += ` ${storage.error}`;
  document.body.dataset.stored = parts.length ? ["clip", "sam2", "head"].filter((kind) => storage[kind]).join(",") : "none";
}

/** The models kept by an earlier visit become the sources, as if picked. */
async function restoreStored(progress) {
  const { kinds } = await engine.call("stored", {}, { onProgress: progress });
  for (const [kind, { manifest, files }] of Object.entries(kinds)) {
    storage[kind] = manifest;
    if (!sources[kind]) sources[kind] = { files, label: manifest.label, stored: manifest, persist: false };
  }
  showStorage();
}

async function forgetModels() {
  try {
    await job("forgetting the stored models", "models-panel", () => engine.call("forget"));
    storage.clip = storage.sam2 = storage.head = null;
    showSite();
    // Loaded models stay loaded; a restart could no longer read the stored copies.
    for (const kind of ["clip", "sam2", "head"]) if (sources[kind]?.stored) sources[kind] = null;
    showStorage();
    $("storage-status").textContent += " Forgotten; the models loaded now stay loaded until the page is closed or the engine restarts.";
  } catch (error) {
    $("storage-status").textContent = `Forgetting failed: ${message(error)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// This site's models (models/manifest.json, from `medfocus weights export-web`): downloaded into
// the same storage, checked by SHA-256 as they arrive, then loaded like any stored model. The
// site is asked only when a model it offered is not stored (or on "Check the site again"):
// a visit with everything stored makes no request.

const site = { manifest: null, error: "", note: "" };
const kindNames = { clip: "CLIP", sam2: "SAM 2", head: "head" };
const totalSize = (model) => model.files.reduce((sum, file) => sum + file.size, 0);

/** Whether storage holds exactly the files the site lists for `model`. */
function storedAsOffered(model) {
  const stored = storage[model.kind];
  if (!stored || stored.files.length !== model.files.length) return false;
  return model.files.every((file) => stored.files.some((have) => have.name === file.name && have.size === file.size && have.sha256 === file.sha256));
}

const missingFromSite = () => (site.manifest?.models ?? []).filter((model) => !storedAsOffered(model));

async function checkSite(ask, progress) {
  site.error = site.note = "";
  try {
    const answer = await engine.call("siteModels", { base: document.baseURI, ask }, { onProgress: progress });
    site.manifest = answer.manifest;
    if (answer.offline) site.note = "The site could not be reached; its offer as last seen is shown.";
  } catch (error) {
    if (error instanceof Superseded) throw error;
    site.error = message(error);
  }
  showSite();
}

function showSite() {
  const models = site.manifest?.models ?? [];
  $("site-models").hidden = !models.length && !site.error;
  $("site-list").replaceChildren(
    ...models.map((model) => {
      const item = document.createElement("li");
      const state = storedAsOffered(model) ? "kept in this browser" : storage[model.kind] ? "not downloaded (another model is kept)" : "not downloaded";
      item.textContent = `${kindNames[model.kind]}: ${model.description ?? model.label} — ${megabytes(totalSize(model))}, ${state}`;
      return item;
    }),
  );
  const missing = missingFromSite();
  const bytes = missing.reduce((sum, model) => sum + totalSize(model), 0);
  $("site-download").textContent = missing.length ? `Download ${missing.map((model) => kindNames[model.kind]).join(", ")} (${megabytes(bytes)})` : "Downloaded";
  $("site-status").textContent = models.length
    ? `${missing.length ? "Downloaded once, kept in this browser and checked by SHA-256; " : "Everything this site offers is kept in this browser; "}images are never sent. ${site.note}`.trim()
    : "";
  $("site-error").textContent = site.error;
  document.body.dataset.site = site.error ? "error" : !models.length ? "none" : missing.length ? "offered" : "stored";
  updateControls();
}

async function downloadFromSite() {
  const wanted = missingFromSite();
  site.error = "";
  try {
    await job("downloading this site's models", "models-panel", async (progress) => {
      for (const model of wanted) {
        const { manifest, files } = await engine.call("download", { model, base: document.baseURI }, { onProgress: progress });
        storage[model.kind] = manifest;
        sources[model.kind] = { files, label: manifest.label, stored: manifest, persist: false };
        showStorage();
        showSite();
        await loaders[model.kind](progress);
      }
    });
  } catch (error) {
    if (!(error instanceof Superseded)) site.error = message(error);
  }
  showSite();
  refreshView();
}

async function checkSiteAgain() {
  try {
    await job("asking this site for its models", "models-panel", (progress) => checkSite(true, progress));
  } catch (error) {
    if (!(error instanceof Superseded)) site.error = message(error);
  }
  showSite();
}

// ---------------------------------------------------------------------------------------------
// The image

async function showImage(file) {
  generation += 1;
  const mine = generation;
  sources.image = file;
  image = null;
  view = null;
  region.box = null;
  region.points = [];
  $("region").value = "";
  setSegmentation(null);
  lastResult = null;
  $("results").replaceChildren();
  $("comparison").replaceChildren();
  $("classify-status").textContent = "";
  $("image-error").textContent = "";
  fill($("image-info"), [["file", file.name], ["status", busy ? `waiting for ${busy.label}, then decoding` : "decoding…"]]);
  draw();
  updateControls();
  let decoded;
  try {
    decoded = await engine.call("decode", { file });
  } catch (error) {
    if (mine !== generation) return;
    fill($("image-info"), []);
    // A restart while it waited: the decode is lost with the old worker; ask again.
    if (error instanceof Superseded) return showImage(file);
    $("image-error").textContent = `${file.name}: ${message(error)}`;
    sources.image = null;
    return;
  }
  if (mine !== generation) return; // another image was dropped meanwhile
  fill($("image-info"), [
    ["file", decoded.name],
    ["format", decoded.format],
    ["size", `${decoded.width} × ${decoded.height} px`],
    ["channels", `${decoded.channels} × ${decoded.bitsPerChannel} bit (${decoded.layout})`],
    ["content", decoded.greyContent ? "grayscale" : "colour"],
    ...(decoded.notes.length ? [["decoded", decoded.notes.join("; ")]] : []),
  ]);
  image = {
    name: decoded.name,
    width: decoded.width,
    height: decoded.height,
    format: decoded.format,
    pixels: new ImageData(new Uint8ClampedArray(decoded.rgba.buffer), decoded.width, decoded.height),
  };
  for (const canvas of [$("image-canvas"), $("overlay-canvas")]) {
    canvas.width = image.width;
    canvas.height = image.height;
  }
  // The stack keeps the image's aspect within 72 % of the window's height.
  $("canvas-stack").style.maxWidth = `${(72 * image.width) / image.height}vh`;
  draw();
  updateControls();
  document.body.dataset.image = `${image.width}x${image.height}`;
  refreshView();
}

function wireImageInput() {
  const drop = $("drop");
  const input = $("file-input");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  input.addEventListener("change", () => input.files[0] && showImage(input.files[0]));
  for (const target of [drop, $("canvas-stack")]) acceptDrops(target, drop, (files) => files[0] && showImage(files[0]));
}

/** Files dropped on `target` go to `take`; `highlighted` shows that a drop would land. */
function acceptDrops(target, highlighted, take) {
  target.addEventListener("dragover", (event) => {
    event.preventDefault();
    highlighted.classList.add("over");
  });
  target.addEventListener("dragleave", () => highlighted.classList.remove("over"));
  target.addEventListener("drop", (event) => {
    event.preventDefault();
    highlighted.classList.remove("over");
    take(event.dataTransfer.files);
  });
}

// ---------------------------------------------------------------------------------------------
// Drawing: the base canvas holds exactly the pixels CLIP's preprocessing receives (the visual
// prompt drawn in by wasm, the same code as classification); the overlay holds what only the
// person sees (mask outline under focus modes that leave the pixels alone, box, points, crop).

/** The mask's border (cyan, a few pixels wide at large sizes) on a transparent layer. */
function outlineOf(mask, width, height) {
  const outline = new ImageData(width, height);
  const words = new Uint32Array(outline.data.buffer);
  const step = Math.max(1, Math.round(width / 500));
  const cyan = 0xffffdc00; // little-endian RGBA (0, 220, 255, 255)
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (!mask[row + x]) continue;
      const border =
        x < step || y < step || x >= width - step || y >= height - step ||
        !mask[row + x - step] || !mask[row + x + step] || !mask[row - step * width + x] || !mask[row + step * width + x];
      if (border) words[row + x] = cyan;
    }
  }
  return outline;
}

function draw() {
  const stack = $("canvas-stack");
  stack.classList.toggle("shown", Boolean(image));
  if (!image) {
    $("view-caption").textContent = "";
    drawInput();
    return;
  }
  const base = $("image-canvas").getContext("2d");
  const current = view && view.generation === generation ? view : null;
  // The crop focus hands the tower a smaller picture: the full image stays on the canvas, the
  // cropped one is the input thumbnail.
  const sameSize = current && current.focused.width === image.width && current.focused.height === image.height;
  base.putImageData(sameSize ? current.focused : image.pixels, 0, 0);

  const overlay = $("overlay-canvas").getContext("2d");
  overlay.clearRect(0, 0, image.width, image.height);
  const focus = current?.focus ?? $("focus").value;
  const unit = Math.max(2, image.width / 300);
  if (segmentation && !(sameSize && drawsIntoPixels(focus))) {
    // putImageData ignores compositing: draw the outline through a scratch canvas.
    const scratch = new OffscreenCanvas(image.width, image.height);
    scratch.getContext("2d").putImageData(segmentation.outline, 0, 0);
    overlay.drawImage(scratch, 0, 0);
  }
  if (region.box) {
    const [left, top, right, bottom] = region.box;
    overlay.lineWidth = unit;
    overlay.strokeStyle = "#ffcc00";
    overlay.strokeRect(left, top, right - left, bottom - top);
  }
  for (const [x, y, label] of region.points) {
    overlay.beginPath();
    overlay.arc(x, y, unit * 2.5, 0, 2 * Math.PI);
    overlay.fillStyle = label ? "#23c552" : "#e5484d";
    overlay.fill();
    overlay.lineWidth = unit / 2;
    overlay.strokeStyle = "#fff";
    overlay.stroke();
  }
  if (sameSize) {
    const [left, top, right, bottom] = current.crop;
    if (left > 0.5 || top > 0.5 || right < image.width - 0.5 || bottom < image.height - 0.5) {
      overlay.setLineDash([unit * 4, unit * 3]);
      overlay.lineWidth = unit / 1.5;
      overlay.strokeStyle = "#7fd3ff";
      overlay.strokeRect(left, top, right - left, bottom - top);
      overlay.setLineDash([]);
    }
  }
  const parts = [];
  if (current && !sameSize) {
    parts.push(`The ${focus} focus hands CLIP only the region's box (grown by the margin): see CLIP's input below.`);
  } else if (current) {
    parts.push(
      drawsIntoPixels(focus)
        ? `Shown as CLIP receives it: the ${focus} focus drawn in by the same code that classifies.`
        : `Shown as CLIP receives it (the ${focus} focus leaves the pixels alone).`,
    );
    if (segmentation && !drawsIntoPixels(focus)) parts.push("The cyan outline is the mask, drawn for you only.");
    parts.push("The dashed line, when shown, is CLIP's centre crop: outside it is not seen.");
  } else if (models.clip && needsRegion($("focus").value) && !segmentation && !region.box) {
    parts.push(`The ${$("focus").value} focus needs a region: drag a box, or segment with SAM 2.`);
  }
  $("view-caption").textContent = parts.join(" ");
  drawInput();
}

function drawInput() {
  const canvas = $("input-canvas");
  const current = image && view && view.generation === generation ? view : null;
  canvas.hidden = !current;
  if (!current) {
    canvas.width = canvas.height = 0;
    $("input-caption").textContent = models.clip ? "" : "CLIP's input appears here once a model is loaded.";
    return;
  }
  canvas.width = canvas.height = current.inputSize;
  const context = canvas.getContext("2d");
  context.putImageData(current.input, 0, 0);
  let caption = `CLIP's input: ${current.inputSize} × ${current.inputSize} px after resize and centre crop`;
  if (current.patchWeights) {
    // The attention focus: darker patches are the ones the bias turns attention away from.
    const cell = current.inputSize / current.grid;
    for (let row = 0; row < current.grid; row++) {
      for (let column = 0; column < current.grid; column++) {
        const weight = current.patchWeights[row * current.grid + column];
        context.fillStyle = `rgba(0, 0, 0, ${(0.6 * (1 - weight)).toFixed(3)})`;
        context.fillRect(column * cell, row * cell, cell, cell);
      }
    }
    caption += `; shaded: the ${current.grid}×${current.grid} patches the attention bias turns away from`;
  }
  $("input-caption").textContent = `${caption}.`;
}

/** The focus knobs and region the page would classify with now. */
function focusOptions(focus = $("focus").value) {
  const options = { focus, templates: templatesValue() };
  const mask = currentMask();
  if (needsRegion(focus)) {
    if (mask) options.mask = mask.maskPng;
    else if (region.box) options.box = region.box;
  }
  return options;
}

/** Asks the engine for CLIP's view of the image (never locks: it is queued behind any job). */
async function refreshView() {
  const focus = $("focus").value;
  const request = ++viewRequest;
  const mine = generation;
  if (!image || !models.clip || (needsRegion(focus) && !currentMask() && !region.box)) {
    view = null;
    draw();
    updateControls();
    return;
  }
  try {
    const answer = await engine.call("view", { options: focusOptions(focus) });
    if (request !== viewRequest || mine !== generation) return; // superseded by a newer view
    view = {
      generation: mine,
      focus,
      focused: new ImageData(new Uint8ClampedArray(answer.focused.buffer), answer.width, answer.height),
      input: new ImageData(new Uint8ClampedArray(answer.input.buffer), answer.inputSize, answer.inputSize),
      inputSize: answer.inputSize,
      crop: [...answer.crop],
      grid: answer.grid,
      patchWeights: answer.patchWeights,
    };
    document.body.dataset.view = `${image.name}:${focus}`;
  } catch (error) {
    if (request !== viewRequest || error instanceof Superseded) return;
    view = null;
    $("view-caption").textContent = `CLIP's view: ${message(error)}`;
  }
  draw();
  updateControls();
}

// ---------------------------------------------------------------------------------------------
// The region: box, points, SAM 2 and its candidate masks

function currentMask() {
  return segmentation ? segmentation.choices[segmentation.chosen] : null;
}

/** A mask as a canvas of at most 96 px a side (sampled: a full-size one would block the thread). */
function thumbnailOf(choice) {
  const scale = Math.min(1, 96 / Math.max(choice.width, choice.height));
  const width = Math.max(1, Math.round(choice.width * scale));
  const height = Math.max(1, Math.round(choice.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const pixels = new ImageData(width, height);
  const words = new Uint32Array(pixels.data.buffer);
  for (let y = 0; y < height; y++) {
    const row = Math.min(choice.height - 1, Math.floor(y / scale)) * choice.width;
    for (let x = 0; x < width; x++) {
      // Little-endian RGBA: opaque white inside, opaque black outside.
      words[y * width + x] = choice.mask[row + Math.min(choice.width - 1, Math.floor(x / scale))] ? 0xffffffff : 0xff000000;
    }
  }
  canvas.getContext("2d").putImageData(pixels, 0, 0);
  return canvas;
}

function setSegmentation(result) {
  segmentation = result;
  const candidates = $("candidates");
  candidates.replaceChildren();
  if (!result) {
    $("segment-result").textContent = "";
    return;
  }
  result.outline = outlineOf(currentMask().mask, currentMask().width, currentMask().height);
  const mask = currentMask();
  const share = ((100 * mask.area) / (mask.width * mask.height)).toFixed(1);
  const iou = Number.isFinite(mask.predictedIou) ? `, predicted IoU ${mask.predictedIou.toFixed(3)}` : "";
  $("segment-result").textContent = `Mask: ${mask.area} px (${share} % of the image)${iou}; ${result.how}. CLIP's focus uses it.`;
  if (result.choices.length > 1) {
    result.choices.forEach((choice, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.setAttribute("aria-pressed", String(index === result.chosen));
      button.title = `candidate ${index + 1}: ${choice.area} px`;
      button.append(thumbnailOf(choice));
      const label = document.createElement("span");
      label.textContent = `${index + 1}: ${((100 * choice.area) / (choice.width * choice.height)).toFixed(1)} %`;
      button.append(label);
      button.addEventListener("click", () => {
        setSegmentation({ ...result, chosen: index });
        refreshView();
        updateControls();
      });
      candidates.append(button);
    });
  }
}

async function segment(options, how) {
  $("segment-error").textContent = "";
  const name = image.name;
  const startedFor = generation;
  try {
    const { value, stale } = await job("segmenting", "region-panel", (progress) =>
      engine.call("segment", { options }, { onProgress: progress }),
    );
    if (stale) {
      $("segment-result").textContent = `A segmentation of ${name} finished after another image was chosen; it was discarded.`;
      document.body.dataset.segmented = "discarded";
      return;
    }
    const detail =
      how === "automatic"
        ? `the largest of SAM 2's ${value.candidates} automatic masks that is not the background`
        : `the best of SAM 2's ${value.candidates} candidates for the ${how}`;
    const choices = [value, ...value.alternatives];
    setSegmentation({ choices, chosen: 0, how: `${detail}${choices.length > 1 ? "; pick another below" : ""}` });
    document.body.dataset.segmented = `${name}:${how}`;
  } catch (error) {
    if (error instanceof Superseded) {
      $("segment-result").textContent = `Segmentation ${message(error)}.`;
      document.body.dataset.segmented = "cancelled";
      return;
    }
    if (startedFor !== generation) {
      $("segment-result").textContent = `A segmentation of ${name} that failed after another image was chosen was discarded.`;
      document.body.dataset.segmented = "discarded";
      return;
    }
    $("segment-result").textContent = "";
    $("segment-error").textContent = message(error);
    document.body.dataset.segmented = "error";
  }
  draw();
  updateControls();
  refreshView();
}

function promptOptions() {
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

function wireRegion() {
  const canvas = $("overlay-canvas");
  let start = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    const x = Math.round(((event.clientX - box.left) / box.width) * canvas.width);
    const y = Math.round(((event.clientY - box.top) / box.height) * canvas.height);
    return [Math.min(Math.max(x, 0), canvas.width), Math.min(Math.max(y, 0), canvas.height)];
  };
  const tool = () => document.querySelector("input[name=tool]:checked").value;
  canvas.addEventListener("pointerdown", (event) => {
    if (!image) return;
    if (tool() !== "box") {
      // A point prompt runs at once (as in SAM's own demos), when SAM 2 is there and idle.
      region.points.push([...at(event), tool() === "include" ? 1 : 0]);
      draw();
      updateControls();
      if (models.sam2 && !busy) segment(promptOptions(), region.points.length > 1 ? "points" : "point");
      return;
    }
    start = at(event);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!start) return;
    const [x, y] = at(event);
    region.box = [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)];
    $("region").value = region.box.join(",");
    draw();
  });
  canvas.addEventListener("pointerup", () => {
    if (!start) return;
    start = null;
    if (region.box && (region.box[2] - region.box[0] < 2 || region.box[3] - region.box[1] < 2)) {
      region.box = null;
      $("region").value = "";
    }
    draw();
    updateControls();
    if (!segmentation) refreshView();
  });
  $("region").addEventListener("change", () => {
    const parsed = parseBox($("region").value);
    $("segment-error").textContent = parsed === undefined ? "The box is four whole numbers: left,top,right,bottom (left < right, top < bottom)." : "";
    region.box = parsed ?? null;
    draw();
    updateControls();
    if (!segmentation) refreshView();
  });
  $("segment-prompt").addEventListener("click", () => segment(promptOptions(), region.points.length ? "box and points" : "box"));
  $("segment-auto").addEventListener("click", () => segment({ auto: true, pointsPerSide: Number($("auto-grid").value) }, "automatic"));
  $("region-clear").addEventListener("click", () => {
    region.box = null;
    region.points = [];
    $("region").value = "";
    setSegmentation(null);
    draw();
    updateControls();
    refreshView();
  });
}

// ---------------------------------------------------------------------------------------------
// Classification, comparison, export

function showResults(result) {
  const table = $("results");
  table.replaceChildren();
  const rows = result.classes.map((name, index) => [name, result.probabilities[index]]);
  rows.sort((a, b) => b[1] - a[1]);
  rows.forEach(([name, probability], rank) => {
    const row = document.createElement("tr");
    if (rank === 0) row.className = "top";
    const label = document.createElement("td");
    label.textContent = name;
    const value = document.createElement("td");
    value.textContent = `${(probability * 100).toFixed(2)} %`;
    const bar = document.createElement("td");
    const fillBar = document.createElement("span");
    fillBar.className = "bar";
    fillBar.style.width = `${Math.round(probability * 160)}px`;
    bar.append(fillBar);
    row.append(label, value, bar);
    table.append(row);
  });
}

function regionSummary(result) {
  if (!result.region) return "the whole image";
  const share = `${(100 * result.region.coverage).toFixed(1)} % of the image`;
  return `a region from ${result.region.origin} (${share})`;
}

async function runClassification(label, how, work) {
  $("classify-error").textContent = "";
  $("classify-status").textContent = "";
  const name = image.name;
  const startedFor = generation;
  try {
    const { value, stale } = await job(label, "classify-panel", work);
    if (stale) {
      $("classify-status").textContent = `A result for ${name} finished after another image was chosen; it was discarded.`;
      document.body.dataset.classified = "discarded";
      return null;
    }
    document.body.dataset.classified = `${name}:${how}`;
    return value;
  } catch (error) {
    if (error instanceof Superseded) {
      $("classify-status").textContent = `Classification ${message(error)}.`;
      document.body.dataset.classified = "cancelled";
      return null;
    }
    if (startedFor !== generation) {
      $("classify-status").textContent = `A classification of ${name} that failed after another image was chosen was discarded.`;
      document.body.dataset.classified = "discarded";
      return null;
    }
    $("classify-error").textContent = message(error);
    document.body.dataset.classified = "error";
    return null;
  }
}

async function classify() {
  const focus = $("focus").value;
  const classes = classesValue();
  const options = focusOptions(focus);
  $("comparison").replaceChildren();
  const result = await runClassification("classifying", focus, (progress) =>
    engine.call("classify", { classes, options }, { onProgress: progress }),
  );
  if (!result) return;
  showResults(result);
  $("classify-status").textContent = `Zero-shot, ${focus} focus on ${regionSummary(result)}.`;
  lastResult = { kind: "zero-shot", focus, result, region: result.region };
  updateControls();
}

async function compare() {
  const classes = classesValue();
  const hasRegion = Boolean(currentMask() || region.box);
  const focuses = hasRegion ? ["none", "overlay", "attention", "blur", "crop"] : ["none"];
  const options = focusOptions("overlay");
  delete options.focus;
  const results = await runClassification("comparing focus modes", "compare", (progress) =>
    engine.call("compare", { classes, focuses, options }, { onProgress: progress }),
  );
  if (!results) return;
  $("results").replaceChildren();
  const table = $("comparison");
  table.replaceChildren();
  const head = document.createElement("tr");
  for (const text of ["class", ...results.map(({ focus }) => focus)]) {
    const cell = document.createElement("th");
    cell.textContent = text;
    head.append(cell);
  }
  table.append(head);
  classes.forEach((name, index) => {
    const row = document.createElement("tr");
    const label = document.createElement("td");
    label.textContent = name;
    row.append(label);
    for (const { result, error } of results) {
      const cell = document.createElement("td");
      if (result) {
        const p = result.probabilities[index];
        cell.textContent = `${(p * 100).toFixed(1)} %`;
        if (p === Math.max(...result.probabilities)) cell.className = "best";
      } else {
        cell.textContent = "—";
        cell.title = error;
      }
      row.append(cell);
    }
    table.append(row);
  });
  const failed = results.filter(({ error }) => error);
  $("classify-status").textContent = hasRegion
    ? "The same image and region under each focus mode (bold: the top class)."
    : "Only the none focus without a region: drag a box or segment to compare the others.";
  if (failed.length) $("classify-error").textContent = failed.map(({ focus, error }) => `${focus}: ${error}`).join("; ");
  lastResult = { kind: "comparison", results, region: results.find(({ result }) => result?.region)?.result.region };
  updateControls();
}

async function classifyWithHead() {
  const head = models.head;
  const onSam2 = Boolean(head.automatic);
  const options = focusOptions(head.focus);
  delete options.focus;
  delete options.templates;
  $("comparison").replaceChildren();
  const result = await runClassification("classifying with the head", "head", (progress) =>
    engine.call("classifyWithHead", { options, onSam2 }, { onProgress: progress }),
  );
  if (!result) return;
  showResults(result);
  let note = `${head.kind} head, ${head.focus} focus on ${regionSummary(result)}.`;
  if (result.region?.warning) note += ` ${result.region.warning}.`;
  $("classify-status").textContent = note;
  if (result.region?.mask) {
    // The region SAM 2 found with the head's own settings: shown, and the one exported.
    const { width, height } = image;
    const area = result.region.mask.reduce((sum, value) => sum + (value ? 1 : 0), 0);
    setSegmentation({
      choices: [{ width, height, area, predictedIou: NaN, mask: result.region.mask, maskPng: null }],
      chosen: 0,
      how: result.region.origin === "whole-image" ? "the whole image (SAM 2 found no region with the head's settings)" : "SAM 2's automatic mask with the head's settings",
    });
    draw();
  }
  lastResult = { kind: "head", head, result, region: result.region };
  updateControls();
}

// ---------------------------------------------------------------------------------------------
// Training: one bin of image files per class (the classes field's names, in its order). The
// files stay here; the engine embeds them and trains on each Train, so a restart loses nothing.

const bins = new Map(); // class name → File[]
let trainedHead = null; // {bytes, name, kind, classes}
const imageFile = (file) => /\.(png|jpe?g|bmp|tiff?|webp|dcm|dicom)$/i.test(file.name) || file.type.startsWith("image/");

function renderBins() {
  const names = classesValue();
  for (const name of [...bins.keys()]) if (!names.includes(name)) bins.delete(name);
  const container = $("bins");
  container.replaceChildren();
  for (const name of names) {
    if (!bins.has(name)) bins.set(name, []);
    const files = bins.get(name);
    const bin = document.createElement("div");
    bin.className = "bin";
    bin.dataset.class = name;
    const title = document.createElement("h3");
    title.textContent = name;
    const count = document.createElement("p");
    count.className = "bin-count";
    count.textContent = files.length ? `${files.length} image${files.length === 1 ? "" : "s"}: ${files.slice(0, 3).map((file) => file.name).join(", ")}${files.length > 3 ? ", …" : ""}` : "drop images here";
    const input = document.createElement("input");
    input.type = "file";
    input.multiple = true;
    input.accept = "image/*,.dcm,.dicom";
    input.hidden = true;
    input.setAttribute("aria-label", `images of ${name}`);
    const folder = document.createElement("input");
    folder.type = "file";
    folder.webkitdirectory = true;
    folder.hidden = true;
    folder.setAttribute("aria-label", `a folder of ${name} images`);
    const add = document.createElement("button");
    add.textContent = "Add images";
    add.addEventListener("click", () => input.click());
    const addFolder = document.createElement("button");
    addFolder.textContent = "Folder";
    addFolder.title = `add every image of a folder to ${name}`;
    addFolder.addEventListener("click", () => folder.click());
    const clear = document.createElement("button");
    clear.textContent = "Clear";
    clear.dataset.empty = files.length ? "" : "1";
    clear.addEventListener("click", () => {
      bins.set(name, []);
      renderBins();
    });
    const take = (list) => addToBin(name, [...list]);
    input.addEventListener("change", () => take(input.files));
    folder.addEventListener("change", () => take(folder.files));
    acceptDrops(bin, bin, take);
    const buttons = document.createElement("div");
    buttons.className = "row";
    buttons.append(add, addFolder, clear);
    bin.append(title, count, buttons, input, folder);
    container.append(bin);
  }
  updateControls();
}

function addToBin(name, files) {
  const images = files.filter(imageFile);
  const ignored = files.length - images.length;
  // The same file twice in one bin is one image (the engine would say so too).
  const known = new Set(bins.get(name).map((file) => `${file.name}:${file.size}:${file.lastModified}`));
  for (const file of images) {
    const key = `${file.name}:${file.size}:${file.lastModified}`;
    if (!known.has(key)) bins.get(name).push(file);
    known.add(key);
  }
  $("train-error").textContent = ignored
    ? `${ignored} file${ignored === 1 ? "" : "s"} given to ${name} ${ignored === 1 ? "is not an image and was" : "are not images and were"} left out.`
    : "";
  renderBins();
}

/** The CLIP model's folder name (what native heads record), from the picked folder. */
function clipName() {
  return sources.clip?.label ?? "browser";
}

async function train() {
  const classes = classesValue();
  const kind = $("head-kind").value;
  const focus = $("focus").value;
  $("train-error").textContent = "";
  $("train-status").textContent = "";
  const focusOptions = { focus };
  if (needsRegion(focus)) focusOptions.pointsPerSide = Number($("auto-grid").value);
  const trainOptions = { kind, clipName: clipName(), templates: templatesValue() };
  const started = performance.now();
  try {
    const { value: trained } = await job(`training a ${kind} head`, "train-panel", async (progress) => {
      const result = await engine.call("train", { classes, bins: classes.map((name) => bins.get(name) ?? []), focusOptions, trainOptions }, { onProgress: progress });
      // The trained head becomes the page's head, as if its file had been picked (a restart
      // reloads it from these bytes).
      const name = `${kind}-${focus}.mfh`;
      sources.head = { files: [[name, new File([result.head], name)]], label: name, stored: null, persist: true };
      await loaders.head(progress);
      return result;
    });
    trainedHead = { bytes: trained.head, name: `${kind}-${focus}.mfh`, kind, classes };
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const counts = trained.counts.map((count, index) => `${count} ${classes[index]}`).join(", ");
    let note = `Trained a ${kind} head on ${counts} (${focus} focus) in ${seconds} s; it is now the loaded head.`;
    note += trained.heldOut
      ? ` Held-out accuracy ${(trained.heldOut.accuracy * 100).toFixed(1)}% (${trained.heldOut.measuredOn}).`
      : " Too few images to hold any out: no accuracy estimate.";
    $("train-status").textContent = note;
    const problems = [...trained.skipped.map((line) => `left out ${line}`), ...trained.warnings];
    if (problems.length) $("train-error").textContent = problems.join("; ");
    document.body.dataset.trained = kind;
  } catch (error) {
    $("train-error").textContent = error instanceof Superseded ? `training ${error.message}` : `training: ${message(error)}`;
    document.body.dataset.trained = "error";
  }
  updateControls();
}

function exportHead() {
  download(new Blob([trainedHead.bytes], { type: "application/octet-stream" }), trainedHead.name);
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const baseName = () => image.name.replace(/\.[^.]+$/, "");

async function exportMask() {
  const mask = currentMask();
  if (mask.maskPng) {
    download(new Blob([mask.maskPng], { type: "image/png" }), `${baseName()}_mask.png`);
    return;
  }
  const canvas = new OffscreenCanvas(mask.width, mask.height);
  const pixels = new ImageData(mask.width, mask.height);
  const words = new Uint32Array(pixels.data.buffer);
  for (let i = 0; i < mask.mask.length; i++) words[i] = mask.mask[i] ? 0xffffffff : 0xff000000;
  canvas.getContext("2d").putImageData(pixels, 0, 0);
  download(await canvas.convertToBlob({ type: "image/png" }), `${baseName()}_mask.png`);
}

function exportResult() {
  const report = {
    medfocus: "page",
    created: new Date().toISOString(),
    image: { name: image.name, format: image.format, width: image.width, height: image.height },
    device: models.device?.backend,
    clip: models.clip,
    sam2: models.sam2 ? { name: models.sam2.name, weights: models.sam2.weights } : null,
    region: {
      box: region.box,
      points: region.points.map(([x, y, label]) => ({ x, y, include: Boolean(label) })),
      mask: currentMask() ? { area: currentMask().area, how: segmentation.how } : null,
      used: lastResult.region ? { origin: lastResult.region.origin, coverage: lastResult.region.coverage, warning: lastResult.region.warning } : null,
    },
    classes: classesValue(),
    templates: templatesValue(),
  };
  if (lastResult.kind === "comparison") {
    report.comparison = lastResult.results.map(({ focus, result, error }) => ({ focus, probabilities: result?.probabilities, error }));
  } else {
    report.kind = lastResult.kind;
    report.focus = lastResult.kind === "head" ? lastResult.head.focus : lastResult.focus;
    if (lastResult.kind === "head") report.head = { kind: lastResult.head.kind, clip: lastResult.head.clipName, masks: lastResult.head.masks };
    report.classes = lastResult.result.classes;
    report.probabilities = lastResult.result.probabilities;
  }
  download(new Blob([JSON.stringify(report, null, 2)], { type: "application/json" }), `${baseName()}_medfocus.json`);
}

// ---------------------------------------------------------------------------------------------
// Wiring

async function checkDevice() {
  $("device-check-result").textContent = "";
  try {
    const started = performance.now();
    const { value: result } = await job("checking the device", "models-panel", () => engine.call("check", { size: 128 }));
    const ms = (performance.now() - started).toFixed(0);
    $("device-check-result").textContent =
      `softmax(A·B/√n), n = ${result.size}, on ${result.backend}: max |Δ| to reference ${result.maxAbsDiff.toExponential(2)} (${ms} ms, first run includes kernel compilation)`;
  } catch (error) {
    $("device-check-result").textContent = `check failed: ${message(error)}`;
  }
}

$("device-request").addEventListener("change", () => {
  sources.device = $("device-request").value;
  restartEngine(`on the ${sources.device} device`, "was stopped: the device changed");
});
$("device-check").addEventListener("click", checkDevice);
$("model-input").addEventListener("change", (event) => event.target.files.length && userLoad("clip", clipFiles(event.target.files)));
const single = (file) => ({ files: [[file.name, file]], label: file.name });
$("sam2-input").addEventListener("change", (event) => event.target.files[0] && userLoad("sam2", single(event.target.files[0])));
$("head-input").addEventListener("change", (event) => event.target.files[0] && userLoad("head", single(event.target.files[0])));
$("forget-models").addEventListener("click", forgetModels);
$("site-download").addEventListener("click", downloadFromSite);
$("site-check").addEventListener("click", checkSiteAgain);
$("focus").addEventListener("change", () => {
  updateControls();
  refreshView();
});
$("classify").addEventListener("click", classify);
$("compare").addEventListener("click", compare);
$("classify-head").addEventListener("click", classifyWithHead);
$("export-mask").addEventListener("click", exportMask);
$("export-result").addEventListener("click", exportResult);
$("classes").addEventListener("input", renderBins);
$("train").addEventListener("click", train);
$("export-head").addEventListener("click", exportHead);
$("cancel").addEventListener("click", () => busy && restartEngine("after a cancel", "was cancelled"));
wireImageInput();
wireRegion();
renderBins();
restartEngine(null);
// The page's offline copy (production builds only: the development server has no sw.js). Once it
// controls the page, a restarted engine and a reload need no network.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker
    .register("sw.js")
    .then(() => navigator.serviceWorker.ready)
    .then(() => {
      const controlled = () => navigator.serviceWorker.controller && (document.body.dataset.offlineCopy = "ready");
      if (!controlled()) navigator.serviceWorker.addEventListener("controllerchange", controlled, { once: true });
    })
    .catch(() => (document.body.dataset.offlineCopy = "none"));
}
