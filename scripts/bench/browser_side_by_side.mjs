// MedFocus in the page against onnxruntime-web, side by side in one headless Chromium, one run.
//
//   node scripts/bench/browser_side_by_side.mjs DIST CLIP_FOLDER SAM2_BURNPACK IMAGE \
//       [--devices cpu,gpu] [--sides medfocus,onnxruntime-web] [--rounds N] [--runs N] [--clip-only] [--explain] [--json FILE]
//
// DIST is the built page (`./scripts/serve.sh --build-only`); CLIP_FOLDER and SAM2_BURNPACK are
// what the page loads (`medfocus weights export-web --clip … --sam2 … --sam2-weights f32`: f32, as
// the ONNX tower is); the ONNX towers are the side-by-side bench's exports of the same
// checkpoints (`python scripts/bench/side_by_side.py --sides onnx`, or `--worker export`), found
// in fixtures-large/onnx/ (MEDFOCUS_ONNX_DIR names another folder). onnxruntime-web is installed
// once, pinned, into ~/.cache/medfocus/onnxruntime-web (not a dependency of the page).
//
// Per round and device, each side in a fresh browser context (sides alternate, rounds repeat):
// - MedFocus: the page driven as a person drives it, each step's time from the click to the result
//   on the page (so it includes decoding the image, preprocessing, the worker's messages and the
//   page's update, which onnxruntime-web's figures do not): load CLIP, classify the whole image
//   once (the class prompts' text tower runs then), then RUNS more classifications (the image tower
//   alone: the text embeddings are cached); with --explain, RUNS classifications explained by each
//   method ("Where it looked": relevancy, dense), the heat-map drawn; load SAM 2, segment a box
//   (SAM 2's image encoder and one prompt: the first encoder run in that context).
// - onnxruntime-web: the same towers as ONNX, `InferenceSession.run` timed around the call on a
//   fixed input (the image tower's 224² input, the encoder's 1024²): the first run, then RUNS more.
// Both sides on one thread: the page's engine has no threads, and onnxruntime-web is set to one
// (its threads need a cross-origin isolated page, which neither page is).
// cpu = MedFocus on burn's CPU backend in wasm against onnxruntime-web's `wasm` backend;
// gpu = WebGPU on both (`webgpu` execution provider); SwiftShader where there is no GPU.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium, openEngine, serveDist, serveFiles } from "../dev/dist-server.mjs";
import { ORT_WEB_VERSION, installOrtWeb, median, runOrt } from "./onnxruntime-web.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const usage =
  "usage: node scripts/bench/browser_side_by_side.mjs DIST CLIP_FOLDER SAM2_BURNPACK IMAGE [--devices cpu,gpu] [--sides medfocus,onnxruntime-web] [--rounds N] [--runs N] [--clip-only] [--explain] [--json FILE]";

const args = process.argv.slice(2);
function option(name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 ? args.splice(at, 2)[1] : fallback;
}
function flag(name) {
  const at = args.indexOf(name);
  if (at >= 0) args.splice(at, 1);
  return at >= 0;
}
const devices = option("--devices", "cpu").split(",");
const sides = option("--sides", "medfocus,onnxruntime-web").split(",");
const rounds = Number(option("--rounds", "2"));
const runs = Number(option("--runs", "3"));
const jsonPath = option("--json", null);
const clipOnly = flag("--clip-only");
const explain = flag("--explain");
const [dist, clipFolder, sam2File, image] = args;
if (!image || !(rounds >= 1) || !(runs >= 1) || devices.some((d) => d !== "cpu" && d !== "gpu") || sides.some((s) => s !== "medfocus" && s !== "onnxruntime-web")) {
  console.error(usage);
  process.exit(2);
}
const onnxDir = process.env.MEDFOCUS_ONNX_DIR ?? join(repo, "fixtures-large", "onnx");
const onnx = { clip: "openai-vit-b-16.visual.onnx", sam2: "sam2.1-hiera-tiny.image_encoder.onnx" };
const withOrt = sides.includes("onnxruntime-web");
for (const [tower, file] of Object.entries(onnx)) {
  if (!withOrt || (tower === "sam2" && clipOnly)) continue;
  if (!existsSync(join(onnxDir, file))) {
    console.error(`${join(onnxDir, file)} is missing: export it with python scripts/bench/side_by_side.py --worker export`);
    process.exit(2);
  }
}
const ortDist = withOrt ? installOrtWeb() : null;

const long = { timeout: 1_800_000 };
const medfocusServer = await serveDist(dist);
const ortServer = withOrt ? await serveOrtPage() : null;
const browser = await launchChromium();
const version = browser.version();
const sideRuns = { medfocus: medfocusSide, "onnxruntime-web": ortSide };
const figures = []; // {side, device, work, ms, round}
for (let round = 1; round <= rounds; round++) {
  for (const device of devices) {
    // MedFocus first in odd rounds, onnxruntime-web first in even ones.
    const order = round % 2 ? ["medfocus", "onnxruntime-web"] : ["onnxruntime-web", "medfocus"];
    for (const side of order.filter((name) => sides.includes(name))) {
      try {
        figures.push(...(await sideRuns[side](device)).map((figure) => ({ ...figure, device, round })));
      } catch (error) {
        // One side failing (SwiftShader out of buffer space, say) still reports the rest.
        console.error(`round ${round}, ${device}, ${side}: ${error.message ?? error}`);
        figures.push({ side, device, round, error: String(error.message ?? error) });
      }
    }
  }
}
await browser.close();
medfocusServer.close();
ortServer?.close();

const report = { date: new Date().toISOString(), chromium: version, ortWeb: ORT_WEB_VERSION, rounds, runs, clipOnly, explain, dist, clipFolder, sam2File, image, figures };
if (jsonPath) await writeFile(jsonPath, JSON.stringify(report, null, 1));
printTable(report);

/** The page: CLIP's image tower (steady state) and SAM 2's first image-encoder run. */
async function medfocusSide(device) {
  const { context, page, step, ready } = await openEngine(browser, medfocusServer.url, device);
  const out = [];
  try {
    await step("loadClip", "model", () => page.setInputFiles("#model-input", clipFolder));
    await page.setInputFiles("#file-input", image);
    await page.waitForFunction(() => document.body.dataset.image, null, long);
    await ready();
    await page.selectOption("#focus", "none");
    const first = await step("classify (text + image tower)", "classified", () => page.click("#classify"));
    out.push({ side: "medfocus", work: "clip.first", ms: first.seconds * 1e3 });
    for (let run = 0; run < runs; run++) {
      const timed = await step("classify (image tower)", "classified", () => page.click("#classify"));
      out.push({ side: "medfocus", work: "clip.image", ms: timed.seconds * 1e3, memoryPeakMiB: timed.memory.peak });
    }
    if (explain) {
      for (const method of ["relevancy", "dense"]) {
        // Choosing the method explains the last classification again: that first one untimed.
        await step(`explain (${method}, first)`, "explained", () => page.selectOption("#explain-method", method));
        await ready();
        for (let run = 0; run < runs; run++) {
          const timed = await step(`classify, explained (${method})`, "explained", () => page.click("#classify"));
          out.push({ side: "medfocus", work: `clip.explain_${method}`, ms: timed.seconds * 1e3, memoryPeakMiB: timed.memory.peak });
        }
      }
      await page.selectOption("#explain-method", "off");
      await ready();
    }
    if (!clipOnly) {
      await step("loadSam2", "sam2", () => page.setInputFiles("#sam2-input", sam2File));
      const [width, height] = (await page.evaluate(() => document.body.dataset.image)).split("x").map(Number);
      await page.fill("#region", [0.25 * width, 0.25 * height, 0.75 * width, 0.75 * height].map(Math.round).join(","));
      await page.dispatchEvent("#region", "change");
      const segmented = await step("segment a box (encoder + prompt)", "segmented", () => page.click("#segment-prompt"));
      out.push({ side: "medfocus", work: "sam2.encoder_first", ms: segmented.seconds * 1e3, memoryPeakMiB: segmented.memory.peak });
    }
  } finally {
    await context.close();
  }
  return out;
}

/** onnxruntime-web on the exported towers, in a page of its own. */
async function ortSide(device) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (message) => message.type() === "error" && console.error(`[ort ${device}] ${message.text()}`));
  const out = [];
  try {
    await page.goto(ortServer.url);
    await page.waitForFunction(() => typeof ort === "object", null, long);
    const provider = device === "cpu" ? "wasm" : "webgpu";
    const towers = clipOnly ? [["clip", [1, 3, 224, 224]]] : [["clip", [1, 3, 224, 224]], ["sam2", [1, 3, 1024, 1024]]];
    for (const [tower, shape] of towers) {
      // onnxruntime-web's full graph optimisation can refuse an export its native build runs (seen:
      // SAM 2's encoder, "Can't merge shape info"); then the next lower level, named in the figures.
      let result = null;
      const refusals = [];
      for (const level of ["all", "extended", "basic", "disabled"]) {
        try {
          result = await page.evaluate(runOrt, { url: `/onnx/${onnx[tower]}`, shape, runs, provider, level });
          result.level = level;
          break;
        } catch (error) {
          refusals.push(`${level}: ${String(error.message ?? error).split("\n")[0]}`);
          console.error(`[ort ${device}] ${tower} at optimisation level ${level}: ${refusals.at(-1)}`);
        }
      }
      if (!result) {
        out.push({ side: "onnxruntime-web", work: tower, error: refusals.join("; ") });
        continue;
      }
      console.error(`[ort ${device}] ${tower} (level ${result.level}): load ${(result.loadMs / 1e3).toFixed(1)} s, first ${(result.times[0] / 1e3).toFixed(2)} s, then ${result.times.slice(1).map((ms) => (ms / 1e3).toFixed(2)).join(" ")} s`);
      const level = result.level;
      if (tower === "clip") {
        for (const ms of result.times.slice(1)) out.push({ side: "onnxruntime-web", work: "clip.image", ms, level });
      } else {
        out.push({ side: "onnxruntime-web", work: "sam2.encoder_first", ms: result.times[0], level });
        for (const ms of result.times.slice(1)) out.push({ side: "onnxruntime-web", work: "sam2.encoder", ms, level });
      }
    }
  } finally {
    await context.close();
  }
  return out;
}

/** A bare page with onnxruntime-web, its files at /ort/ and the ONNX towers at /onnx/. */
function serveOrtPage() {
  const index = `<!doctype html><meta charset="utf-8"><title>onnxruntime-web</title><script src="/ort/ort.all.min.js"></script>`;
  return serveFiles({ index, roots: { "/ort/": ortDist, "/onnx/": onnxDir } });
}

/** Per device and work: each side's range of per-round medians, and the ratio of their medians. */
function printTable({ date, chromium, figures }) {
  const rows = [
    ["clip.image", "CLIP ViT-B/16 image tower, 1 image (steady)"],
    ["clip.explain_relevancy", "the same, explained: relevancy (last block)"],
    ["clip.explain_dense", "the same, explained: dense"],
    ["sam2.encoder_first", "SAM 2.1 tiny image encoder, first run (MedFocus: + one prompt)"],
    ["sam2.encoder", "SAM 2.1 tiny image encoder, later runs"],
  ];
  const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
  console.log(`\n${date}, Chromium ${chromium}, onnxruntime-web ${ORT_WEB_VERSION}, one thread each side`);
  console.log("| device | work | onnxruntime-web | MedFocus (page) | MedFocus / onnxruntime-web |");
  console.log("|---|---|---|---|---|");
  for (const device of devices) {
    for (const [work, title] of rows) {
      const cells = ["onnxruntime-web", "medfocus"].map((side) => {
        const perRound = [];
        for (let round = 1; round <= rounds; round++) {
          const values = figures.filter((f) => f.side === side && f.device === device && f.work === work && f.round === round && f.ms !== undefined).map((f) => f.ms);
          if (values.length) perRound.push(median(values));
        }
        return perRound;
      });
      if (!cells[0].length && !cells[1].length) continue;
      const span = (perRound) => (Math.min(...perRound) === Math.max(...perRound) ? fmt(perRound[0]) : `${fmt(Math.min(...perRound))}–${fmt(Math.max(...perRound))}`);
      const text = cells.map((perRound) => (perRound.length ? span(perRound) : "—"));
      const ratio = cells[0].length && cells[1].length ? `${(median(cells[1]) / median(cells[0])).toFixed(2)}×` : "—";
      console.log(`| ${device} | ${title} | ${text[0]} | ${text[1]} | ${ratio} |`);
    }
  }
  const levels = new Map();
  for (const f of figures) if (f.level) levels.set(`${f.device} ${f.work}`, f.level);
  console.log(`onnxruntime-web graph optimisation level: ${[...levels].map(([work, level]) => `${work} ${level}`).join(", ") || "—"}`);
  for (const f of figures) if (f.error) console.log(`failed: round ${f.round}, ${f.device}, ${f.side}${f.work ? ` ${f.work}` : ""}: ${f.error}`);
}
