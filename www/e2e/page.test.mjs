// End-to-end test of the page in headless Chromium (Debian's, with WebGPU enabled): it loads the
// wasm, reports a WebGPU device, checks computation, decodes a real JPEG and a DICOM, and shows a
// clear error for a corrupt file. Run by scripts/test.sh after `scripts/serve.sh --build-only`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { copyFile, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, normalize, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const dist = join(root, "dist");
// Clicks that start model work: the models still run on the page's thread (SwiftShader or the CPU
// backend here, seconds to minutes), so Playwright must not wait for the page to answer after the
// click; each test waits for the result it expects instead.
const startsWork = { noWaitAfter: true, timeout: 120_000 };
const data = process.env.MEDFOCUS_DATA ?? join(root, "..", "shared", "data");
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

let server;
let browser;
let page;
let url;
const consoleErrors = [];

before(async () => {
  // A static server for dist/ on a loopback port chosen by the OS.
  server = createServer(async (request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
    const file = join(dist, path === "/" ? "index.html" : path);
    try {
      const body = await readFile(file);
      response.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${server.address().port}/`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--enable-unsafe-webgpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
    ],
  });
  page = await browser.newPage();
  page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  await page.goto(url);
});

after(async () => {
  await browser?.close();
  server?.close();
});

test("the page reports the WebGPU device it chose and its check passes", async () => {
  await page.waitForFunction(() => document.body.dataset.device, null, { timeout: 60_000 });
  const device = await page.evaluate(() => document.body.dataset.device);
  assert.equal(device, "WebGPU", `device report: ${await page.textContent("#device-report")}; errors: ${consoleErrors}`);
  const report = await page.textContent("#device-report");
  assert.match(report, /adapter/);
  assert.match(report, /max storage binding/);

  await page.click("#device-check");
  await page.waitForFunction(() => /max \|Δ\|/.test(document.querySelector("#device-check-result").textContent), null, {
    timeout: 60_000,
  });
  const check = await page.textContent("#device-check-result");
  const diff = Number(/max \|Δ\| to reference ([0-9.e+-]+)/.exec(check)[1]);
  assert.ok(diff < 1e-5, check);
});

test("switching to the CPU backend is reported", async () => {
  await page.selectOption("#device-request", "cpu");
  await page.waitForFunction(() => document.body.dataset.device === "flex", null, { timeout: 30_000 });
  assert.match(await page.textContent("#device-report"), /requested/);
});

test("a real chest X-ray is decoded in wasm and drawn", async () => {
  const file = join(data, "chest-xray", "PNEUMONIA", "person1951_bacteria_4882.jpeg");
  await page.setInputFiles("#file-input", file);
  await page.waitForFunction(() => document.body.dataset.image, null, { timeout: 30_000 });
  const info = await page.textContent("#image-info");
  assert.match(info, /1 × 8 bit \(L8\)/);
  assert.match(info, /grayscale/);
  const [width, height] = (await page.evaluate(() => document.body.dataset.image)).split("x").map(Number);
  assert.ok(width > 900 && height > 500, `${width}x${height}`);
  // The canvas holds the picture, not a blank: the X-ray has both dark and bright pixels.
  const [min, max] = await page.evaluate(() => {
    const canvas = document.querySelector("#preview");
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let lo = 255;
    let hi = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      lo = Math.min(lo, pixels[i]);
      hi = Math.max(hi, pixels[i]);
    }
    return [lo, hi];
  });
  assert.ok(min < 30 && max > 200, `pixel range ${min}..${max}`);
});

test("a CLIP model folder loads in the page and classifies the X-ray, whole or focused", async () => {
  await page.selectOption("#device-request", "gpu");
  await page.waitForFunction(() => document.body.dataset.device === "WebGPU", null, { timeout: 30_000 });
  await page.setInputFiles("#model-input", join(root, "tests", "fixtures", "clip", "openclip-tiny"));
  await page.waitForFunction(() => document.body.dataset.model, null, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.model), "open_clip", await page.textContent("#clip-error"));
  assert.match(await page.textContent("#model-status"), /open_clip model loaded \(32 px input\)/);

  const classifyWith = async (focus, region) => {
    await page.fill("#classes", "normal chest x-ray, pneumonia, effusion");
    await page.selectOption("#focus", focus);
    await page.fill("#region", region);
    await page.evaluate(() => delete document.body.dataset.classified);
    await page.click("#classify", startsWork);
    await page.waitForFunction(() => document.body.dataset.classified, null, { timeout: 60_000 });
    return page.evaluate(() => ({
      outcome: document.body.dataset.classified,
      error: document.querySelector("#clip-error").textContent,
      rows: [...document.querySelectorAll("#results tr")].map((row) => [
        row.cells[0].textContent,
        Number.parseFloat(row.cells[1].textContent),
      ]),
    }));
  };
  const whole = await classifyWith("none", "");
  assert.equal(whole.outcome, "person1951_bacteria_4882.jpeg:none", whole.error);
  assert.equal(whole.rows.length, 3);
  assert.ok(Math.abs(whole.rows.reduce((sum, [, p]) => sum + p, 0) - 100) < 0.1, JSON.stringify(whole.rows));
  assert.ok(whole.rows[0][1] >= whole.rows[1][1] && whole.rows[1][1] >= whole.rows[2][1]);

  // Dragging on the image marks the region (in image pixels, whatever the displayed scale).
  await page.locator("#preview").scrollIntoViewIfNeeded();
  const box = await page.locator("#preview").boundingBox();
  await page.mouse.move(box.x + box.width * 0.1, box.y + box.height * 0.2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.7, { steps: 5 });
  await page.mouse.up();
  const dragged = (await page.inputValue("#region")).split(",").map(Number);
  const [width, height] = (await page.evaluate(() => document.body.dataset.image)).split("x").map(Number);
  const near = (value, expected) => Math.abs(value - expected) <= 3;
  assert.ok(
    near(dragged[0], width * 0.1) && near(dragged[1], height * 0.2) && near(dragged[2], width * 0.5) && near(dragged[3], height * 0.7),
    `dragged region ${dragged} on ${width}x${height}`,
  );

  const focused = await classifyWith("attention", "100,100,600,500");
  assert.equal(focused.outcome, "person1951_bacteria_4882.jpeg:attention", focused.error);
  assert.notDeepEqual(focused.rows, whole.rows, "the attention focus changed nothing");
  if (process.env.MEDFOCUS_SCREENSHOT) await page.screenshot({ path: process.env.MEDFOCUS_SCREENSHOT, fullPage: true });

  const missing = await classifyWith("overlay", "");
  assert.equal(missing.outcome, "error");
  assert.match(missing.error, /mask is needed/);
});

test("a head trained natively loads in the page and classifies with the CLIP model", async () => {
  const classifyWithHead = async () => {
    await page.evaluate(() => delete document.body.dataset.classified);
    await page.click("#classify-head", startsWork);
    await page.waitForFunction(() => document.body.dataset.classified, null, { timeout: 60_000 });
    return page.evaluate(() => ({
      outcome: document.body.dataset.classified,
      error: document.querySelector("#clip-error").textContent,
      rows: [...document.querySelectorAll("#results tr")].map((row) => [row.cells[0].textContent, Number.parseFloat(row.cells[1].textContent)]),
    }));
  };
  await page.fill("#region", "");
  await page.setInputFiles("#head-input", join(root, "tests", "fixtures", "heads", "brain-mri-tip-adapter-f.mfh"));
  await page.waitForFunction(() => document.body.dataset.head, null, { timeout: 30_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.head), "tip-adapter-f", await page.textContent("#clip-error"));
  assert.match(await page.textContent("#head-status"), /tip-adapter-f head for glioma, meningioma, notumor, pituitary/);
  const result = await classifyWithHead();
  assert.equal(result.outcome, "person1951_bacteria_4882.jpeg:head", result.error);
  assert.deepEqual(result.rows.map(([name]) => name).sort(), ["glioma", "meningioma", "notumor", "pituitary"]);
  assert.ok(Math.abs(result.rows.reduce((sum, [, p]) => sum + p, 0) - 100) < 0.1, JSON.stringify(result.rows));

  await page.evaluate(() => delete document.body.dataset.head);
  await page.setInputFiles("#head-input", { name: "head.mfh", mimeType: "application/octet-stream", buffer: Buffer.from("not a head") });
  await page.waitForFunction(() => document.body.dataset.head, null, { timeout: 30_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.head), "error");
  assert.match(await page.textContent("#clip-error"), /not a MedFocus head file/);
  assert.ok(await page.isDisabled("#classify-head"));
});

test("SAM 2 segments the dragged region in the page and the mask steers CLIP", async () => {
  // The X-ray from the previous tests is still shown, the CLIP model still loaded.
  await page.setInputFiles("#sam2-input", join(root, "tests", "fixtures", "sam2", "sam2.1-tiny-small.int8.bpk"));
  await page.waitForFunction(() => document.body.dataset.sam2, null, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.sam2), "int8-per-block-32", await page.textContent("#sam2-error"));
  assert.match(await page.textContent("#sam2-status"), /sam2\.1-tiny-small loaded \(int8-per-block-32 weights/);

  await page.fill("#region", "100,100,600,500");
  await page.click("#sam2-region", startsWork);
  await page.waitForFunction(() => document.body.dataset.segmented, null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.segmented), "person1951_bacteria_4882.jpeg:region", await page.textContent("#sam2-error"));
  const area = Number((await page.textContent("#sam2-result")).match(/mask: (\d+) px/)[1]);
  assert.ok(area > 0, await page.textContent("#sam2-result"));

  // The mask, tinted on the canvas, is what the overlay focus sends to CLIP.
  await page.selectOption("#focus", "overlay");
  await page.evaluate(() => delete document.body.dataset.classified);
  await page.click("#classify", startsWork);
  await page.waitForFunction(() => document.body.dataset.classified, null, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.classified), "person1951_bacteria_4882.jpeg:overlay", await page.textContent("#clip-error"));

  // In click mode a click on the image is a point prompt.
  await page.check("#sam2-click");
  await page.locator("#preview").scrollIntoViewIfNeeded();
  const box = await page.locator("#preview").boundingBox();
  await page.evaluate(() => delete document.body.dataset.segmented);
  await page.mouse.click(box.x + box.width * 0.5, box.y + box.height * 0.5);
  await page.waitForFunction(() => document.body.dataset.segmented, null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.segmented), "person1951_bacteria_4882.jpeg:click", await page.textContent("#sam2-error"));
  await page.uncheck("#sam2-click");
  await page.click("#sam2-clear");
});

test("a file that is not a SAM 2 burnpack is a clear error", async () => {
  await page.setInputFiles("#sam2-input", { name: "sam2.bpk", mimeType: "application/octet-stream", buffer: Buffer.from("not a burnpack") });
  await page.waitForFunction(() => document.body.dataset.sam2 === "error", null, { timeout: 30_000 });
  assert.match(await page.textContent("#sam2-error"), /not a MedFocus SAM 2 burnpack/);
});

test("a model folder without weights is a clear error", async () => {
  // A folder holding only the config: the weights file is missing.
  const folder = await mkdtemp(join(tmpdir(), "medfocus-model-"));
  await copyFile(join(root, "tests/fixtures/clip/openclip-tiny/open_clip_config.json"), join(folder, "open_clip_config.json"));
  await page.setInputFiles("#model-input", folder);
  await page.waitForFunction(() => document.body.dataset.model === "error", null, { timeout: 30_000 });
  assert.match(await page.textContent("#clip-error"), /open_clip_model\.safetensors .*missing/);
});

test("a corrupt file gives a clear error and keeps the page working", async () => {
  await page.setInputFiles("#file-input", { name: "broken.jpg", mimeType: "image/jpeg", buffer: Buffer.from("not really a jpeg") });
  await page.waitForFunction(() => document.querySelector("#image-error").textContent, null, { timeout: 30_000 });
  assert.match(await page.textContent("#image-error"), /broken\.jpg: not a supported image format/);
  assert.deepEqual(consoleErrors, []);
});

test("a DICOM CT is windowed in wasm as its file says, and the page says how", async () => {
  await page.setInputFiles("#file-input", join(root, "tests", "fixtures", "dicom", "ct-window.dcm"));
  await page.waitForFunction(() => document.body.dataset.image === "64x48", null, { timeout: 30_000 });
  const info = await page.textContent("#image-info");
  assert.match(info, /DICOM/);
  assert.match(info, /window centre 40 \/ width 400/);
  assert.match(info, /MONOCHROME2/);
});
