// The engine session: the worker (www/engine.js), the device it runs on and the models loaded in
// it, reloaded from the files the person gave whenever it restarts (cancel, device switch, an
// internal error). Also what the engine keeps in this browser's storage (OPFS) and this site's
// models: both become model sources like files the person picked.
import { Engine, Superseded } from "../engine.js";
import { $, megabytes, message, mib } from "./dom.js";
import { job, settled } from "./jobs.js";
import { changed, mark, note, state } from "./state.js";

export const engine = new Engine();

/** Where the engine computes, in words (the model statuses say "loaded on …"). */
export function deviceWords(report) {
  if (!report) return "no device";
  if (report.kind === "cpu") return "the CPU";
  return report.kind === "gpu" ? "the GPU (WebGPU)" : "a software GPU (WebGPU)";
}

const computesOn = {
  cpu: "this computer's processor (the CPU backend)",
  gpu: "the graphics card, through WebGPU",
  "software-gpu": "a software GPU: WebGPU emulated on the processor, slower than the CPU choice",
};

async function initDevice() {
  state.deviceReport = [["status", "choosing…"]];
  note("device-check-result", "");
  try {
    const report = await engine.call("init", { request: state.sources.device });
    state.models.device = report;
    const entries = [["computes on", computesOn[report.kind] ?? report.kind]];
    if (report.threads) entries.push(["threads", report.threads > 1 ? `${report.threads}, every core` : `1: ${report.threadsWhy}`]);
    if (report.adapter) entries.push(["graphics adapter", report.adapter.name || "(the browser gives no name)"]);
    entries.push(["why", report.reason]);
    for (const warning of report.warnings) entries.push(["warning", warning, "warning"]);
    if (report.adapter) {
      const { limits } = report.adapter;
      entries.push(
        ["largest GPU buffer", mib(limits.max_buffer_size)],
        ["half precision (f16)", limits.shader_f16 ? "offered" : "not offered"],
      );
    }
    state.deviceReport = entries;
    mark("device", report.backend);
  } catch (error) {
    state.models.device = null;
    state.deviceReport = [["error", message(error), "error"]];
    mark("device", "error");
    if (error instanceof Superseded) throw error;
  }
  changed();
}

/** The request for a load: a restart reloads without storing again. */
function takeSource(kind) {
  const { files, label, stored, persist } = state.sources[kind];
  return { files, label, stored, persist };
}

const origin = (kind) => {
  const stored = state.sources[kind]?.stored;
  if (!stored) return "";
  return stored.source === "site" ? " (this site's, kept in this browser)" : " (from this browser's storage)";
};

/** Notes where a loaded model's files are kept now. */
function kept(kind, answer) {
  if (state.sources[kind]) state.sources[kind].persist = false; // stored (or tried): a reload does not again
  if (answer.manifest) state.storage[kind] = answer.manifest;
  state.storage.forgotten = false;
  state.storage.error = answer.storeError ? `Could not keep the ${kind} files in this browser: ${answer.storeError}` : "";
  changed();
  showMemory();
}

/** Asks the engine how much of the 4 GiB a page's WebAssembly may have its models hold. */
export async function showMemory() {
  try {
    state.memory = await engine.call("memory");
    changed();
    mark("memory", JSON.stringify(state.memory));
  } catch {
    // A restart is under way; the next load reports again.
  }
}

/** Each kind's loader: takes its source, loads it in the engine, says what loaded (or why not). */
export const loaders = {
  async clip(progress) {
    note("clip-error", "");
    note("model-status", "loading…");
    state.models.clip = null;
    const started = performance.now();
    try {
      const clip = await engine.call("loadClip", takeSource("clip"), { onProgress: progress });
      state.models.clip = clip;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      note("model-status", `${clip.family} model${origin("clip")} loaded on ${deviceWords(state.models.device)} (${clip.imageSize} px input) in ${seconds} s.`);
      kept("clip", clip);
      mark("model", clip.family);
    } catch (error) {
      if (error instanceof Superseded) throw error;
      state.sources.clip = null;
      note("model-status", "No CLIP model.");
      note("clip-error", `CLIP model: ${message(error)}`);
      mark("model", "error");
    }
  },

  async sam2(progress) {
    note("sam2-error", "");
    note("sam2-status", "loading…");
    state.models.sam2 = null;
    const started = performance.now();
    try {
      const sam2 = await engine.call("loadSam2", takeSource("sam2"), { onProgress: progress });
      state.models.sam2 = sam2;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      note("sam2-status", `${sam2.name}${origin("sam2")} loaded on ${deviceWords(state.models.device)} (${sam2.weights} weights, ${megabytes(sam2.bytes)}) in ${seconds} s.`);
      kept("sam2", sam2);
      mark("sam2", sam2.weights);
    } catch (error) {
      if (error instanceof Superseded) throw error;
      state.sources.sam2 = null;
      note("sam2-status", "No SAM 2 model.");
      note("sam2-error", `SAM 2: ${message(error)}`);
      mark("sam2", "error");
    }
  },

  async head(progress) {
    note("head-error", "");
    state.models.head = null;
    try {
      const head = await engine.call("loadHead", takeSource("head"), { onProgress: progress });
      state.models.head = head;
      let region = "the whole image";
      if (head.automatic) {
        const grid = head.automatic.points_per_side;
        const round = (value) => Number(value.toFixed(3));
        region = `SAM 2's automatic masks as in its training (${grid}×${grid} points, predicted IoU > ${round(head.automatic.pred_iou_thresh)}, stability ≥ ${round(head.automatic.stability_score_thresh)}, the whole image when none qualifies) — needs SAM 2`;
      } else if (head.needsMask) {
        region = "a region (box or mask) you give";
      }
      kept("head", head);
      note("head-status", `${head.kind} head${origin("head")} for ${head.classes.join(", ")}; focus ${head.focus}, on ${region}; trained on CLIP model ${head.clipName}.`);
      mark("head", head.kind);
    } catch (error) {
      if (error instanceof Superseded) throw error;
      state.sources.head = null;
      note("head-status", "No head.");
      note("head-error", `head: ${message(error)}`);
      mark("head", "error");
    }
  },
};

const statusOf = { clip: "model-status", sam2: "sam2-status", head: "head-status" };
// What each status line says while its model is not loaded: the page's own words, so that a
// restart after "Forget stored models" says so instead of the old "loaded on …".
const unloaded = Object.fromEntries(Object.entries(statusOf).map(([kind, id]) => [kind, $(id).textContent.replace(/\s+/g, " ").trim()]));

/** A model not (re)loaded: its status line says so, if it said anything else. */
function sayUnloaded(kind) {
  if (state.notes[statusOf[kind]]) note(statusOf[kind], unloaded[kind]);
}

/** The models kept by an earlier visit become the sources, as if picked. */
async function restoreStored(progress) {
  const { kinds } = await engine.call("stored", {}, { onProgress: progress });
  for (const [kind, { manifest, files }] of Object.entries(kinds)) {
    state.storage[kind] = manifest;
    if (!state.sources[kind]) state.sources[kind] = { files, label: manifest.label, stored: manifest, persist: false };
  }
  state.storage.read = true;
  changed();
}

/** Whether storage holds exactly the files the site lists for `model`. */
export function storedAsOffered(model) {
  const stored = state.storage[model.kind];
  if (!stored || stored.files.length !== model.files.length) return false;
  return model.files.every((file) => stored.files.some((have) => have.name === file.name && have.size === file.size && have.sha256 === file.sha256));
}

export const missingFromSite = () => (state.site.manifest?.models ?? []).filter((model) => !storedAsOffered(model));

/**
 * This site's models (models/manifest.json, from `medfocus weights export-web`). The site is
 * asked only when a model it offered is not stored (or `ask`: "Check the site again"): a visit
 * with everything stored makes no request.
 */
export async function checkSite(ask, progress) {
  const { site } = state;
  site.error = site.note = "";
  try {
    const answer = await engine.call("siteModels", { base: document.baseURI, ask }, { onProgress: progress });
    site.manifest = answer.manifest;
    if (answer.offline) site.note = "The site could not be reached; its offer as last seen is shown.";
  } catch (error) {
    if (error instanceof Superseded) throw error;
    site.error = message(error);
  }
  changed();
}

/** Downloads the models this site offers that storage lacks, checked as they arrive, and loads them. */
export async function downloadFromSite() {
  const wanted = missingFromSite();
  state.site.error = "";
  try {
    await job("downloading this site's models", "models-panel", async (progress) => {
      for (const model of wanted) {
        const { manifest, files } = await engine.call("download", { model, base: document.baseURI }, { onProgress: progress });
        state.storage[model.kind] = manifest;
        state.sources[model.kind] = { files, label: manifest.label, stored: manifest, persist: false };
        changed();
        await loaders[model.kind](progress);
      }
    });
  } catch (error) {
    if (!(error instanceof Superseded)) state.site.error = message(error);
  }
  changed();
}

/** Forgets every stored model; the loaded ones stay loaded until the engine restarts. */
export async function forgetModels() {
  try {
    await job("forgetting the stored models", "models-panel", () => engine.call("forget"));
    state.storage.clip = state.storage.sam2 = state.storage.head = null;
    // A restart could no longer read the stored copies.
    for (const kind of ["clip", "sam2", "head"]) if (state.sources[kind]?.stored) state.sources[kind] = null;
    state.storage.forgotten = true;
  } catch (error) {
    state.storage.error = `Forgetting failed: ${message(error)}`;
  }
  changed();
}

/**
 * Starts the engine on the chosen device, or restarts it (`reason`), ending whatever runs (the
 * job's promise rejects with `Superseded(superseded)`), and reloads every model given so far.
 */
export async function restartEngine(reason, superseded) {
  if (reason) {
    engine.restart(superseded);
    await settled();
  }
  const { models, sources } = state;
  models.device = models.clip = models.sam2 = models.head = null;
  state.view = null;
  mark("engine", "starting");
  try {
    await job(reason ? `restarting the engine ${reason}` : "starting the engine", "models-panel", async (progress) => {
      await initDevice();
      if (!models.device) {
        for (const kind of Object.keys(statusOf)) sayUnloaded(kind);
        return;
      }
      if (!reason) {
        await restoreStored(progress);
        await checkSite(false, progress);
      }
      for (const kind of ["clip", "sam2", "head"]) {
        if (sources[kind]) await loaders[kind](progress);
        else sayUnloaded(kind);
      }
      // The worker lost the image with everything else: hand it the same file again.
      if (sources.image && state.image) await engine.call("decode", { file: sources.image }, { onProgress: progress });
    });
  } catch (error) {
    if (!(error instanceof Superseded)) {
      state.deviceReport = [["error", message(error), "error"]];
      changed();
    }
  }
  mark("engine", "ready");
}

/** Loads the files the person gave for `kind` (and keeps them in storage once they load). */
export async function userLoad(kind, given) {
  state.sources[kind] = { ...given, stored: null, persist: true };
  try {
    await job(`loading the ${kind === "clip" ? "CLIP model" : kind === "sam2" ? "SAM 2 model" : "head"}`, "models-panel", loaders[kind]);
  } catch (error) {
    if (!(error instanceof Superseded)) note(`${kind}-error`, message(error));
  }
}
