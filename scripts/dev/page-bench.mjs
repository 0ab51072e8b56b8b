// Usage: node scripts/dev/page-bench.mjs DIST CLIP_FOLDER SAM2_BURNPACK IMAGE [cpu|gpu ...] [--auto N] [--clip-only]
// (after scripts/serve.sh --build-only; a benchmark, not a test). The page in headless Chromium
// driven as a person drives it, every model step in its worker: load a CLIP folder and a SAM 2
// burnpack (picked files, streamed into wasm), pick an image, segment a box (SAM 2's image
// encoder + one prompt), add a point (the prompt alone: the embedding is kept), optionally an
// automatic mask on an N×N grid, then classify the whole image (no focus) and with the overlay
// and attention focus. Reports each step's wall time from the click to the result on the page and
// the engine's WebAssembly memory after it: the allocator's live and peak MiB and the module's
// linear memory ("reserved", which never shrinks). One fresh browser context per device:
// cpu = burn's CPU backend in wasm, gpu = WebGPU (SwiftShader on a machine without a GPU).
// --clip-only loads CLIP alone and classifies the whole image (SAM 2's image encoder on
// SwiftShader did not finish in 25 minutes on a 2-core machine; a classification took 7 minutes).
import { launchChromium, openEngine, serveDist } from "./dist-server.mjs";

const args = process.argv.slice(2);
const autoAt = args.indexOf("--auto");
const autoGrid = autoAt >= 0 ? Number(args.splice(autoAt, 2)[1]) : 0;
const clipOnlyAt = args.indexOf("--clip-only");
const clipOnly = clipOnlyAt >= 0;
if (clipOnly) args.splice(clipOnlyAt, 1);
const [dist, clipFolder, sam2File, image, ...requested] = args;
if (!image) {
  console.error("usage: node scripts/dev/page-bench.mjs DIST CLIP_FOLDER SAM2_BURNPACK IMAGE [cpu|gpu ...] [--auto N] [--clip-only]");
  process.exit(2);
}
const devices = requested.length ? requested : ["cpu", "gpu"];
const long = { timeout: 1_800_000 };

const server = await serveDist(dist);
const browser = await launchChromium();
const report = { dist, clipFolder, sam2File, image, autoGrid, clipOnly, runs: [] };
for (const device of devices) {
  // One device failing (say SwiftShader running out of buffer space) still reports the others.
  report.runs.push(await benchOn(device).catch((error) => ({ device, error: String(error.message ?? error) })));
}
console.log(JSON.stringify(report, null, 1));
await browser.close();
server.close();

async function benchOn(device) {
  const { context, page, step, ready } = await openEngine(browser, server.url, device);
  const steps = {};
  steps.loadClip = await step("loadClip", "model", () => page.setInputFiles("#model-input", clipFolder));
  await page.setInputFiles("#file-input", image);
  await page.waitForFunction(() => document.body.dataset.image, null, long);
  const [width, height] = (await page.evaluate(() => document.body.dataset.image)).split("x").map(Number);
  if (!clipOnly) {
    steps.loadSam2 = await step("loadSam2", "sam2", () => page.setInputFiles("#sam2-input", sam2File));
    const box = [0.25 * width, 0.25 * height, 0.75 * width, 0.75 * height].map(Math.round);
    await page.fill("#region", box.join(","));
    await page.dispatchEvent("#region", "change");
    steps.segmentBox = await step("segmentBox", "segmented", () => page.click("#segment-prompt"));
    await page.check("#tool-include");
    await page.locator("#overlay-canvas").scrollIntoViewIfNeeded();
    const canvas = await page.locator("#overlay-canvas").boundingBox();
    steps.addPoint = await step("addPoint", "segmented", () => page.mouse.click(canvas.x + canvas.width * 0.5, canvas.y + canvas.height * 0.5));
    await page.check("#tool-box");
    if (autoGrid) {
      await page.selectOption("#auto-grid", String(autoGrid));
      steps.automatic = await step("automatic", "segmented", () => page.click("#segment-auto"));
    }
  }
  for (const focus of clipOnly ? ["none"] : ["none", "overlay", "attention"]) {
    await ready();
    await page.selectOption("#focus", focus);
    steps[`classify-${focus}`] = await step(`classify-${focus}`, "classified", () => page.click("#classify"));
  }
  const result = { device: await page.evaluate(() => document.body.dataset.device), image: `${width}x${height}`, steps };
  await context.close();
  return result;
}
