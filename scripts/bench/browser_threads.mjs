// The page's CPU fallback with and without threads, against onnxruntime-web with and without its
// threads, in one cross-origin isolated headless Chromium page (issue 36's third lever).
//
//   node scripts/bench/browser_threads.mjs PKG_SINGLE PKG_THREADS CLIP_FOLDER IMAGE [--rounds N] [--runs N] [--threads N] [--sides single,threads,ort-single,ort-threads] [--json FILE]
//
// PKG_SINGLE: the page's wasm module as `wasm-bindgen --target web` writes it (no threads);
// PKG_THREADS: the threaded CPU module (scripts/build-threads.sh); CLIP_FOLDER: what the page loads
// (`medfocus weights export-web --clip …`); IMAGE: any image. The ONNX image tower is the
// side-by-side bench's export in fixtures-large/onnx/ (MEDFOCUS_ONNX_DIR names another folder).
//
// Per round, each side in a fresh browser context, in a dedicated worker as the page's engine is:
// MedFocus loads CLIP on the CPU backend and classifies the image RUNS + 1 times (the first also
// runs the text tower; the rest time the image tower, preprocessing and the answer, as the page
// does); onnxruntime-web (wasm backend) runs the same tower as ONNX on a fixed 224² input.
import { createServer } from "node:http";
import { readFile, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { installOrtWeb, median, runOrt } from "./onnxruntime-web.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args.splice(at, 2)[1] : fallback;
};
const rounds = Number(option("--rounds", "2"));
const runs = Number(option("--runs", "3"));
const threads = Number(option("--threads", "2"));
const jsonPath = option("--json", null);
const only = option("--sides", null)?.split(",");
const [pkgSingle, pkgThreads, clipFolder, imagePath] = args;
if (!imagePath) {
  console.error("usage: node scripts/bench/browser_threads.mjs PKG_SINGLE PKG_THREADS CLIP_FOLDER IMAGE [--rounds N] [--runs N] [--threads N] [--json FILE]");
  process.exit(2);
}
const onnxDir = process.env.MEDFOCUS_ONNX_DIR ?? join(repo, "fixtures-large/onnx");
const ortDist = installOrtWeb();

// The engine's side, in a module worker: the exports the page's worker calls.
const workerScript = `
self.onmessage = async ({ data: { pkg, threads, runs } }) => {
  try {
    const m = await import("/" + pkg + "/medfocus.js");
    await m.default();
    if (threads > 0) await m.initThreadPool(threads);
    await m.initDevice("cpu");
    const files = new m.ModelFiles("clip");
    for (const name of ["open_clip_config.json", "open_clip_model.safetensors"]) {
      const bytes = new Uint8Array(await (await fetch("/clip/" + name)).arrayBuffer());
      files.begin(name, bytes.length);
      for (let at = 0; at < bytes.length; at += 1 << 24) files.push(bytes.subarray(at, at + (1 << 24)));
      files.end();
    }
    const clip = m.loadClip(files);
    const image = new Uint8Array(await (await fetch("/image")).arrayBuffer());
    const times = [];
    let answer = null;
    for (let run = 0; run <= runs; run++) {
      const started = performance.now();
      answer = await clip.classify(image, ["normal", "pneumonia"], {});
      times.push(performance.now() - started);
    }
    postMessage({ times, probabilities: answer.probabilities, isolated: self.crossOriginIsolated });
  } catch (error) {
    postMessage({ error: String(error?.message ?? error) });
  }
};`;

const index = `<!doctype html><meta charset="utf-8"><title>threads</title><script src="/ort/ort.all.min.js"></script>`;
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const roots = { "/pkg-single/": pkgSingle, "/pkg-threads/": pkgThreads, "/clip/": clipFolder, "/ort/": ortDist, "/onnx/": onnxDir };
// Cross-origin isolation: SharedArrayBuffer (the threads' shared memory) needs both.
const isolation = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
const server = createServer(async (request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
  const answer = (type, body) => response.writeHead(200, { "content-type": type, ...isolation }).end(body);
  if (path === "/") return answer("text/html", index);
  if (path === "/worker.js") return answer("text/javascript", workerScript);
  if (path === "/image") return answer("application/octet-stream", await readFile(imagePath));
  // wasm-bindgen-rayon's worker imports its package as a folder ("../../.."): its main script.
  if (path === "/pkg-threads/") return answer("text/javascript", await readFile(join(pkgThreads, "medfocus.js")));
  const prefix = Object.keys(roots).find((candidate) => path.startsWith(candidate));
  if (!prefix) return response.writeHead(404).end();
  const file = join(roots[prefix], path.slice(prefix.length));
  try {
    answer(types[extname(file)] ?? "application/octet-stream", await readFile(file));
  } catch {
    response.writeHead(404).end();
  }
});
await new Promise((done) => server.listen(0, "127.0.0.1", done));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
const chromiumVersion = browser.version();
const long = { timeout: 1_800_000 };
// onnxruntime-web: the exported image tower on its `wasm` backend, default optimisation.
const ortTower = { url: "/onnx/openai-vit-b-16.visual.onnx", shape: [1, 3, 224, 224], provider: "wasm", level: "all" };
const sides = [
  { side: "MedFocus, 1 thread", run: (page) => page.evaluate(engine, { pkg: "pkg-single", threads: 0, runs }) },
  { side: `MedFocus, ${threads} threads`, run: (page) => page.evaluate(engine, { pkg: "pkg-threads", threads, runs }) },
  { side: "onnxruntime-web, 1 thread", run: (page) => page.evaluate(runOrt, { ...ortTower, runs, threads: 1 }) },
  { side: `onnxruntime-web, ${threads} threads`, run: (page) => page.evaluate(runOrt, { ...ortTower, runs, threads }) },
];
if (only) sides.splice(0, sides.length, ...sides.filter((_, at) => only.includes(["single", "threads", "ort-single", "ort-threads"][at])));
const figures = [];
try {
  for (let round = 1; round <= rounds; round++) {
    for (const { side, run } of round % 2 ? sides : [...sides].reverse()) {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.on("console", (message) => message.type() === "error" && console.error(`[${side}] ${message.text()}`));
      await page.goto(url);
      await page.waitForFunction(() => typeof ort === "object", null, long);
      const result = await run(page);
      await context.close();
      if (result.error) throw new Error(`${side}: ${result.error}`);
      if (!result.isolated) throw new Error(`${side}: the page is not cross-origin isolated`);
      console.error(`round ${round}, ${side}: first ${(result.times[0] / 1e3).toFixed(2)} s, then ${result.times.slice(1).map((ms) => (ms / 1e3).toFixed(2)).join(" ")} s${result.probabilities ? `, p = ${result.probabilities.map((p) => p.toFixed(6)).join(" ")}` : ""}`);
      figures.push({ round, side, ms: result.times.slice(1), probabilities: result.probabilities ?? null });
    }
  }
} finally {
  await browser.close();
  server.close();
}
const cpu = execFileSync("sh", ["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2; grep -c processor /proc/cpuinfo"]).toString().trim().split("\n");
console.log(`${new Date().toISOString().slice(0, 10)}, ${cpu[0].trim()}, ${cpu[1]} logical cores, Chromium ${chromiumVersion}; CLIP ViT-B/16 image tower, median per round of ${runs} runs after the first`);
console.log("| side | per round (ms) |");
console.log("|---|---|");
for (const { side } of sides) {
  const medians = figures.filter((figure) => figure.side === side).map((figure) => median(figure.ms).toFixed(0));
  console.log(`| ${side} | ${medians.join(", ")} |`);
}
if (jsonPath) await writeFile(jsonPath, JSON.stringify(figures, null, 1));

/** In the page: the engine in a module worker, as the page runs it. */
function engine(message) {
  return new Promise((done) => {
    const worker = new Worker("/worker.js", { type: "module" });
    worker.onmessage = ({ data }) => {
      worker.terminate();
      done(data);
    };
    worker.onerror = (event) => done({ error: event.message ?? "the worker failed" });
    worker.postMessage(message);
  });
}
