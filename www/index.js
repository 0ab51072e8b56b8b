// The page: chooses the compute device inside wasm, decodes dropped images inside wasm and shows
// them back. All work happens in this tab; nothing is sent anywhere.
import * as medfocus from "../pkg/medfocus.js";

const $ = (id) => document.getElementById(id);

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

function mib(bytes) {
  return `${Math.round(bytes / 1048576)} MiB`;
}

async function chooseDevice() {
  const request = $("device-request").value;
  $("device-check").disabled = true;
  $("device-check-result").textContent = "";
  fill($("device-report"), [["status", "choosing…"]]);
  try {
    const report = await medfocus.initDevice(request);
    const entries = [
      ["backend", report.backend],
      ["kind", report.kind],
    ];
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
    $("device-check").disabled = false;
    document.body.dataset.device = report.backend;
  } catch (error) {
    fill($("device-report"), [["error", error.message ?? String(error), "error"]]);
    document.body.dataset.device = "error";
  }
}

async function checkDevice() {
  $("device-check-result").textContent = "computing…";
  try {
    const started = performance.now();
    const result = await medfocus.checkDevice(128);
    const ms = (performance.now() - started).toFixed(0);
    $("device-check-result").textContent =
      `softmax(A·B/√n), n = ${result.size}, on ${result.backend}: max |Δ| to reference ${result.maxAbsDiff.toExponential(2)} (${ms} ms, first run includes kernel compilation)`;
  } catch (error) {
    $("device-check-result").textContent = `check failed: ${error.message ?? error}`;
  }
}

// The image shown (bytes for classification, pixels to redraw under the region box).
let current = null;
let clip = null;
let sam2 = null;
let head = null;
// The last SAM 2 mask of the current image: {maskPng (for CLIP), mask (0/255 per pixel), area, …}.
let segmentation = null;

function drawImage() {
  const canvas = $("preview");
  if (!current) return;
  const context = canvas.getContext("2d");
  if (segmentation) {
    // The mask tinted red over the image, as the overlay focus shows it to CLIP.
    const tinted = new ImageData(new Uint8ClampedArray(current.pixels.data), current.pixels.width, current.pixels.height);
    const { mask } = segmentation;
    for (let i = 0; i < mask.length; i++) {
      if (mask[i]) {
        tinted.data[i * 4] = Math.round(tinted.data[i * 4] * 0.5 + 127);
        tinted.data[i * 4 + 1] = Math.round(tinted.data[i * 4 + 1] * 0.5);
        tinted.data[i * 4 + 2] = Math.round(tinted.data[i * 4 + 2] * 0.5);
      }
    }
    context.putImageData(tinted, 0, 0);
  } else {
    context.putImageData(current.pixels, 0, 0);
  }
  const region = parseRegion();
  if (region) {
    const [left, top, right, bottom] = region;
    context.lineWidth = Math.max(2, canvas.width / 200);
    context.strokeStyle = "#ffcc00";
    context.strokeRect(left, top, right - left, bottom - top);
  }
}

function parseRegion() {
  const text = $("region").value.trim();
  if (!text) return null;
  const values = text.split(",").map((v) => Number(v.trim()));
  return values.length === 4 && values.every(Number.isInteger) ? values : null;
}

async function showImage(file) {
  current = null;
  updateClassifyButton();
  $("image-error").textContent = "";
  fill($("image-info"), []);
  const canvas = $("preview");
  canvas.width = canvas.height = 0;
  let image;
  try {
    image = medfocus.decodeImage(new Uint8Array(await file.arrayBuffer()));
  } catch (error) {
    $("image-error").textContent = `${file.name}: ${error.message ?? error}`;
    return;
  }
  try {
    fill($("image-info"), [
      ["file", file.name],
      ["format", image.format],
      ["size", `${image.width} × ${image.height} px`],
      ["channels", `${image.channels} × ${image.bitsPerChannel} bit (${image.layout})`],
      ["content", image.greyContent ? "grayscale" : "colour"],
      ...(image.notes.length ? [["decoded", image.notes.join("; ")]] : []),
    ]);
    canvas.width = image.width;
    canvas.height = image.height;
    const pixels = new ImageData(new Uint8ClampedArray(image.rgba()), image.width, image.height);
    current = { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()), pixels };
    $("region").value = "";
    setSegmentation(null);
    drawImage();
    updateClassifyButton();
    document.body.dataset.image = `${image.width}x${image.height}`;
  } finally {
    image.free();
  }
}

function wireImageInput() {
  const drop = $("drop");
  const input = $("file-input");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") input.click();
  });
  input.addEventListener("change", () => input.files[0] && showImage(input.files[0]));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) showImage(file);
  });
}

function wireRegionDrawing() {
  const canvas = $("preview");
  let start = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    const x = Math.round(((event.clientX - box.left) / box.width) * canvas.width);
    const y = Math.round(((event.clientY - box.top) / box.height) * canvas.height);
    return [Math.min(Math.max(x, 0), canvas.width), Math.min(Math.max(y, 0), canvas.height)];
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (!current) return;
    if (sam2 && $("sam2-click").checked) {
      segment({ points: [at(event)] }, "click");
      return;
    }
    start = at(event);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!start) return;
    const [x, y] = at(event);
    $("region").value = [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)].join(",");
    drawImage();
  });
  canvas.addEventListener("pointerup", () => {
    start = null;
  });
  $("region").addEventListener("input", drawImage);
}

function updateClassifyButton() {
  $("classify").disabled = !(clip && current);
  $("classify-head").disabled = !(clip && head && current);
  $("sam2-region").disabled = !(sam2 && current);
  $("sam2-auto").disabled = !(sam2 && current);
  $("sam2-clear").disabled = !segmentation;
}

function setSegmentation(result) {
  segmentation = result;
  $("sam2-result").textContent = result
    ? `mask: ${result.area} px (${((100 * result.area) / (result.width * result.height)).toFixed(1)} % of the image), predicted IoU ${result.predictedIou.toFixed(3)}${result.how}. CLIP's focus now uses this mask.`
    : "";
  drawImage();
  updateClassifyButton();
}

async function loadSam2(file) {
  $("sam2-error").textContent = "";
  $("sam2-status").textContent = "loading…";
  sam2?.free();
  sam2 = null;
  setSegmentation(null);
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const started = performance.now();
    sam2 = medfocus.loadSam2(bytes);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $("sam2-status").textContent = `${sam2.name} loaded (${sam2.weights} weights, ${(bytes.length / 1e6).toFixed(1)} MB) in ${seconds} s.`;
    document.body.dataset.sam2 = sam2.weights;
  } catch (error) {
    $("sam2-status").textContent = "No SAM 2 model loaded.";
    $("sam2-error").textContent = `SAM 2: ${error.message ?? error}`;
    document.body.dataset.sam2 = "error";
  }
  updateClassifyButton();
}

// The models still run on the page's thread (a Web Worker is the next step): hand the event
// back first, so the click completes and "segmenting…" shows before the work blocks the page.
function yieldToBrowser() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function segment(options, how) {
  $("sam2-error").textContent = "";
  $("sam2-result").textContent = "segmenting…";
  for (const id of ["sam2-region", "sam2-auto"]) $(id).disabled = true;
  await yieldToBrowser();
  try {
    const result = await sam2.segment(current.bytes, options);
    const detail = how === "automatic" ? ` — the largest of ${result.candidates} automatic masks that is not the background` : "";
    setSegmentation({ ...result, how: detail });
    document.body.dataset.segmented = `${current.name}:${how}`;
  } catch (error) {
    $("sam2-result").textContent = "";
    $("sam2-error").textContent = error.message ?? String(error);
    document.body.dataset.segmented = "error";
  }
  updateClassifyButton();
}

// Folder contents as {relative path: bytes}; a PyTorch pickle is skipped when the SafeTensors
// file is there (the browser reads only SafeTensors), download leftovers always.
async function loadModel(files) {
  $("clip-error").textContent = "";
  $("model-status").textContent = "loading…";
  clip?.free();
  clip = null;
  updateClassifyButton();
  const entries = [...files].map((file) => {
    const path = file.webkitRelativePath || file.name;
    return [path.includes("/") ? path.slice(path.indexOf("/") + 1) : path, file];
  });
  const names = new Set(entries.map(([name]) => name));
  const wanted = entries.filter(([name]) => {
    if (/\.(part|sha256)$/.test(name)) return false;
    if (name.endsWith(".bin") && names.has(name.replace(/_pytorch_model\.bin$/, "_model.safetensors"))) return false;
    return true;
  });
  try {
    const contents = {};
    for (const [name, file] of wanted) contents[name] = new Uint8Array(await file.arrayBuffer());
    const started = performance.now();
    clip = medfocus.loadClip(contents);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $("model-status").textContent = `${clip.family} model loaded (${clip.imageSize} px input) in ${seconds} s.`;
    document.body.dataset.model = clip.family;
  } catch (error) {
    $("model-status").textContent = "No model loaded.";
    $("clip-error").textContent = `model: ${error.message ?? error}`;
    document.body.dataset.model = "error";
  }
  updateClassifyButton();
}

function showResults(result) {
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
    const fill = document.createElement("span");
    fill.className = "bar";
    fill.style.width = `${Math.round(probability * 200)}px`;
    bar.append(fill);
    row.append(label, value, bar);
    $("results").append(row);
  });
}

/** The region for CLIP: SAM 2's mask when there is one, else the dragged box. */
function regionOptions() {
  const options = {};
  const region = parseRegion();
  if (segmentation) options.mask = segmentation.maskPng;
  else if (region) options.box = region;
  return options;
}

async function classify() {
  $("clip-error").textContent = "";
  $("results").replaceChildren();
  const classes = $("classes").value.split(",").map((name) => name.trim()).filter(Boolean);
  const focus = $("focus").value;
  const options = { focus, ...regionOptions() };
  $("classify").disabled = true;
  await yieldToBrowser();
  try {
    showResults(await clip.classify(current.bytes, classes, options));
    document.body.dataset.classified = `${current.name}:${focus}`;
  } catch (error) {
    $("clip-error").textContent = error.message ?? String(error);
    document.body.dataset.classified = "error";
  }
  updateClassifyButton();
}

async function loadHead(file) {
  $("clip-error").textContent = "";
  head?.free();
  head = null;
  try {
    head = medfocus.loadHead(new Uint8Array(await file.arrayBuffer()));
    const region = head.needsMask ? `, focus ${head.focus} (needs a region)` : "";
    $("head-status").textContent =
      `${head.kind} head for ${head.classes.join(", ")}${region}; trained on CLIP model ${head.clipName}.`;
    document.body.dataset.head = head.kind;
  } catch (error) {
    $("head-status").textContent = "No head loaded.";
    $("clip-error").textContent = `head: ${error.message ?? error}`;
    document.body.dataset.head = "error";
  }
  updateClassifyButton();
}

async function classifyWithHead() {
  $("clip-error").textContent = "";
  $("results").replaceChildren();
  $("classify-head").disabled = true;
  await yieldToBrowser();
  try {
    showResults(await clip.classifyWithHead(current.bytes, head, regionOptions()));
    document.body.dataset.classified = `${current.name}:head`;
  } catch (error) {
    $("clip-error").textContent = error.message ?? String(error);
    document.body.dataset.classified = "error";
  }
  updateClassifyButton();
}

$("model-input").addEventListener("change", (event) => loadModel(event.target.files));
$("sam2-input").addEventListener("change", (event) => event.target.files[0] && loadSam2(event.target.files[0]));
$("sam2-region").addEventListener("click", () => {
  const region = parseRegion();
  if (!region) {
    $("sam2-error").textContent = "Drag a region on the image first (or use the automatic button).";
    return;
  }
  segment({ box: region }, "region");
});
$("sam2-auto").addEventListener("click", () => segment({ auto: true, pointsPerSide: 16 }, "automatic"));
$("sam2-clear").addEventListener("click", () => setSegmentation(null));
$("classify").addEventListener("click", classify);
$("head-input").addEventListener("change", (event) => event.target.files[0] && loadHead(event.target.files[0]));
$("classify-head").addEventListener("click", classifyWithHead);
wireRegionDrawing();
$("device-request").addEventListener("change", chooseDevice);
$("device-check").addEventListener("click", checkDevice);
wireImageInput();
chooseDevice();
