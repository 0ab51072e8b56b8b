// The models panel: the device (and its check), CLIP, SAM 2 and a head from the person's files,
// this site's models, and what this browser keeps.
import { Superseded } from "../../engine.js";
import { $, fill, kindNames, megabytes, message, mib } from "../dom.js";
import { job } from "../jobs.js";
import { checkSite, deviceWords, downloadFromSite, engine, forgetModels, missingFromSite, restartEngine, storedAsOffered, userLoad } from "../session.js";
import { changed, note, rememberDevice, state } from "../state.js";

const totalSize = (model) => model.files.reduce((sum, file) => sum + file.size, 0);

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

const single = (file) => ({ files: [[file.name, file]], label: file.name });

async function checkDevice() {
  note("device-check-result", "");
  try {
    const started = performance.now();
    const { value: result } = await job("checking the device", "models-panel", () => engine.call("check", { size: 128 }));
    const ms = (performance.now() - started).toFixed(0);
    note(
      "device-check-result",
      `softmax(A·B/√n), n = ${result.size}, on ${deviceWords(state.models.device)}: max |Δ| to reference ${result.maxAbsDiff.toExponential(2)} (${ms} ms, first run includes kernel compilation)`,
    );
  } catch (error) {
    note("device-check-result", `check failed: ${message(error)}`);
  }
}

async function checkSiteAgain() {
  try {
    await job("asking this site for its models", "models-panel", (progress) => checkSite(true, progress));
  } catch (error) {
    if (!(error instanceof Superseded)) state.site.error = message(error);
  }
  changed();
}

export function wireModels() {
  $("device-request").value = state.sources.device;
  $("device-request").addEventListener("change", () => {
    rememberDevice($("device-request").value);
    const device = $("device-request").selectedOptions[0].textContent.replace(/ \(.*/, "");
    restartEngine(`on ${device}`, "was stopped: the device changed");
  });
  $("device-check").addEventListener("click", checkDevice);
  $("model-input").addEventListener("change", (event) => event.target.files.length && userLoad("clip", clipFiles(event.target.files)));
  $("sam2-input").addEventListener("change", (event) => event.target.files[0] && userLoad("sam2", single(event.target.files[0])));
  $("head-input").addEventListener("change", (event) => event.target.files[0] && userLoad("head", single(event.target.files[0])));
  $("forget-models").addEventListener("click", forgetModels);
  $("site-download").addEventListener("click", downloadFromSite);
  $("site-check").addEventListener("click", checkSiteAgain);
}

/** Draws the panel; answers the `stored` and `site` markers. */
export function renderModels({ deviceReport, storage, site, memory }) {
  fill($("device-report"), deviceReport);

  const kinds = ["clip", "sam2", "head"].filter((kind) => storage[kind]);
  const parts = kinds.map((kind) => `${kindNames[kind]} ${storage[kind].label} (${megabytes(totalSize(storage[kind]))})`);
  let stored = parts.length
    ? `Kept in this browser, checked by SHA-256 when loaded: ${parts.join(", ")}. The next visit loads them without asking.`
    : "Nothing kept in this browser: models you load are kept here (never uploaded) for the next visit.";
  if (storage.error) stored += ` ${storage.error}`;
  if (storage.forgotten) stored += " Forgotten; the models loaded now stay loaded until the page is closed or the engine restarts.";
  if (storage.read || kinds.length || storage.error) $("storage-status").textContent = stored;
  $("memory-status").textContent = memory
    ? `Engine memory: ${mib(memory.live)} in use, ${mib(memory.peak)} at the peak, of the ${mib(memory.limit)} a page's WebAssembly memory can hold.`
    : "";

  const offered = site.manifest?.models ?? [];
  $("site-models").hidden = !offered.length && !site.error;
  $("site-list").replaceChildren(
    ...offered.map((model) => {
      const item = document.createElement("li");
      const held = storedAsOffered(model) ? "kept in this browser" : storage[model.kind] ? "not downloaded (another model is kept)" : "not downloaded";
      item.textContent = `${kindNames[model.kind]}: ${model.description ?? model.label} — ${megabytes(totalSize(model))}, ${held}`;
      return item;
    }),
  );
  const missing = missingFromSite();
  const bytes = missing.reduce((sum, model) => sum + totalSize(model), 0);
  $("site-download").textContent = missing.length ? `Download ${missing.map((model) => kindNames[model.kind]).join(", ")} (${megabytes(bytes)})` : "Downloaded";
  $("site-status").textContent = offered.length
    ? `${missing.length ? "Downloaded once, kept in this browser and checked by SHA-256; " : "Everything this site offers is kept in this browser; "}images are never sent. ${site.note}`.trim()
    : "";
  $("site-error").textContent = site.error;
  return {
    stored: kinds.length ? kinds.join(",") : "none",
    site: site.error ? "error" : !offered.length ? "none" : missing.length ? "offered" : "stored",
  };
}
