// The train panel: one bin of image files per class (the classes field's names, in its order),
// a head trained in the engine from them, and its download. The files stay here; the engine
// embeds them and trains on each Train, so a restart loses nothing.
import { Superseded } from "../../engine.js";
import { $, acceptDrops, download, message } from "../dom.js";
import { job } from "../jobs.js";
import { engine, loaders } from "../session.js";
import { changed, classesValue, focusValue, mark, needsRegion, note, state, templatesValue } from "../state.js";

const imageFile = (file) => /\.(png|jpe?g|bmp|tiff?|webp|dcm|dicom)$/i.test(file.name) || file.type.startsWith("image/");

function addToBin(name, files) {
  const images = files.filter(imageFile);
  const ignored = files.length - images.length;
  const bin = state.bins.get(name);
  // The same file twice in one bin is one image (the engine would say so too).
  const known = new Set(bin.map((file) => `${file.name}:${file.size}:${file.lastModified}`));
  for (const file of images) {
    const key = `${file.name}:${file.size}:${file.lastModified}`;
    if (!known.has(key)) bin.push(file);
    known.add(key);
  }
  note(
    "train-error",
    ignored ? `${ignored} file${ignored === 1 ? "" : "s"} given to ${name} ${ignored === 1 ? "is not an image and was" : "are not images and were"} left out.` : "",
  );
  state.binsChanged += 1;
  changed();
}

/** The bins follow the classes field: a bin per name, in its order; a removed name's bin goes. */
function syncBins() {
  const names = classesValue();
  const before = [...state.bins.keys()].join("\n");
  state.bins = new Map(names.map((name) => [name, state.bins.get(name) ?? []]));
  if ([...state.bins.keys()].join("\n") !== before) state.binsChanged += 1;
  changed();
}

async function train() {
  const classes = classesValue();
  const kind = $("head-kind").value;
  const focus = focusValue();
  note("train-error", "");
  note("train-status", "");
  const focusOptions = { focus };
  if (needsRegion(focus)) focusOptions.pointsPerSide = Number($("auto-grid").value);
  const trainOptions = { kind, clipName: state.sources.clip?.label ?? "browser", templates: templatesValue() };
  const started = performance.now();
  try {
    const { value: trained } = await job(`training a ${kind} head`, "train-panel", async (progress) => {
      const result = await engine.call("train", { classes, bins: classes.map((name) => state.bins.get(name) ?? []), focusOptions, trainOptions }, { onProgress: progress });
      // The trained head becomes the page's head, as if its file had been picked (a restart
      // reloads it from these bytes).
      const name = `${kind}-${focus}.mfh`;
      state.sources.head = { files: [[name, new File([result.head], name)]], label: name, stored: null, persist: true };
      await loaders.head(progress);
      return result;
    });
    state.trainedHead = { bytes: trained.head, name: `${kind}-${focus}.mfh`, kind, classes };
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const counts = trained.counts.map((count, index) => `${count} ${classes[index]}`).join(", ");
    let said = `Trained a ${kind} head on ${counts} (${focus} focus) in ${seconds} s; it is now the loaded head.`;
    said += trained.heldOut
      ? ` Held-out accuracy ${(trained.heldOut.accuracy * 100).toFixed(1)}% (${trained.heldOut.measuredOn}).`
      : " Too few images to hold any out: no accuracy estimate.";
    note("train-status", said);
    const problems = [...trained.skipped.map((line) => `left out ${line}`), ...trained.warnings];
    if (problems.length) note("train-error", problems.join("; "));
    mark("trained", kind);
  } catch (error) {
    note("train-error", error instanceof Superseded ? `training ${error.message}` : `training: ${message(error)}`);
    mark("trained", "error");
  }
  changed();
}

function exportHead() {
  const { bytes, name } = state.trainedHead;
  download(new Blob([bytes], { type: "application/octet-stream" }), name);
}

export function wireTrain() {
  $("classes").addEventListener("input", syncBins);
  $("train").addEventListener("click", train);
  $("export-head").addEventListener("click", exportHead);
  syncBins();
}

function binOf(name, files) {
  const bin = document.createElement("div");
  bin.className = "bin";
  bin.dataset.class = name;
  const title = document.createElement("h3");
  title.textContent = name;
  const count = document.createElement("p");
  count.className = "bin-count";
  count.textContent = files.length
    ? `${files.length} image${files.length === 1 ? "" : "s"}: ${files.slice(0, 3).map((file) => file.name).join(", ")}${files.length > 3 ? ", …" : ""}`
    : "drop images here";
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
    state.bins.set(name, []);
    state.binsChanged += 1;
    changed();
  });
  const take = (list) => addToBin(name, [...list]);
  input.addEventListener("change", () => take(input.files));
  folder.addEventListener("change", () => take(folder.files));
  acceptDrops(bin, bin, take);
  const buttons = document.createElement("div");
  buttons.className = "row";
  buttons.append(add, addFolder, clear);
  bin.append(title, count, buttons, input, folder);
  return bin;
}

let shownBins = -1; // the version of the bins drawn now (redrawn only when they change)

export function renderTrain({ bins, binsChanged }) {
  if (binsChanged === shownBins) return;
  shownBins = binsChanged;
  $("bins").replaceChildren(...[...bins.entries()].map(([name, files]) => binOf(name, files)));
}
