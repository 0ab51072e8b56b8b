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

// Bins of names no longer in the classes field, by name: typing the name again brings its images
// back (a name is edited one keystroke at a time).
const shelved = new Map();

/**
 * The bins follow the classes field: a bin per name, in its order. A name edited in place (the
 * same number of names, one of them new) keeps its bin's images; a removed name's bin is
 * shelved, not emptied.
 */
function syncBins() {
  const names = classesValue();
  const old = [...state.bins.entries()];
  const renamedInPlace = names.length === old.length && names.some((name) => !state.bins.has(name));
  for (const [name, files] of old) if (files.length && !names.includes(name)) shelved.set(name, files);
  const next = names.map((name, index) => {
    const files = renamedInPlace && !state.bins.has(name) ? old[index][1] : (state.bins.get(name) ?? shelved.get(name) ?? []);
    shelved.delete(name);
    return [name, files];
  });
  const before = old.map(([name, files]) => `${name}:${files.length}`).join("\n");
  state.bins = new Map(next);
  if (next.map(([name, files]) => `${name}:${files.length}`).join("\n") !== before) state.binsChanged += 1;
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
    said += trained.heldOut ? ` ${heldOutWords(trained.heldOut)}` : " Too few images to hold any out: no accuracy estimate.";
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

/** The held-out estimate with what it rests on: "3 of 4 images" says more than "75.0 %". */
function heldOutWords({ accuracy, images, measuredOn }) {
  const percent = `${(accuracy * 100).toFixed(1)} %`;
  if (!images) return `Held-out accuracy ${percent} (${measuredOn}).`;
  const right = Math.round(accuracy * images);
  return `Held-out accuracy ${percent}: ${right} of ${images} image${images === 1 ? "" : "s"} right (${measuredOn}; few images make it a rough estimate).`;
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
  count.textContent = files.length ? `${files.length} image${files.length === 1 ? "" : "s"}` : "drop images here";
  // Each image by name, with its own remove button (one wrong image need not empty the bin).
  const list = document.createElement("ul");
  list.className = "bin-files";
  for (const file of files) {
    const item = document.createElement("li");
    item.append(thumbnail(file));
    const label = document.createElement("span");
    label.textContent = file.name;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.title = `remove ${file.name} from ${name}`;
    remove.setAttribute("aria-label", remove.title);
    remove.addEventListener("click", () => {
      state.bins.set(name, state.bins.get(name).filter((kept) => kept !== file));
      state.binsChanged += 1;
      changed();
    });
    item.append(label, remove);
    list.append(item);
  }
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
  bin.append(title, count, list, buttons, input, folder);
  return bin;
}

let shownBins = -1; // the version of the bins drawn now (redrawn only when they change)
let thumbnailUrls = []; // the object URLs the bins drawn now show, revoked when redrawn

/** A small picture of an image file, as the browser decodes it (JPEG, PNG, BMP, WebP); a DICOM or
 * TIFF, which only the engine reads, keeps its name alone. Nothing leaves the tab: a blob: URL. */
function thumbnail(file) {
  const picture = document.createElement("img");
  const address = URL.createObjectURL(file);
  thumbnailUrls.push(address);
  picture.src = address;
  picture.alt = "";
  picture.addEventListener("error", () => picture.remove());
  return picture;
}

export function renderTrain({ bins, binsChanged }) {
  if (binsChanged === shownBins) return;
  shownBins = binsChanged;
  for (const address of thumbnailUrls) URL.revokeObjectURL(address);
  thumbnailUrls = [];
  $("bins").replaceChildren(...[...bins.entries()].map(([name, files]) => binOf(name, files)));
}
