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

async function showImage(file) {
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
    ]);
    canvas.width = image.width;
    canvas.height = image.height;
    const pixels = new ImageData(new Uint8ClampedArray(image.rgba()), image.width, image.height);
    canvas.getContext("2d").putImageData(pixels, 0, 0);
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

$("device-request").addEventListener("change", chooseDevice);
$("device-check").addEventListener("click", checkDevice);
wireImageInput();
chooseDevice();
