// Usage: node scripts/dev/page-memory.mjs DIST CLIP_FOLDER SAM2_BURNPACK [cpu|gpu]
// (after scripts/serve.sh --build-only; a benchmark, not a test). The engine's WebAssembly memory
// in headless Chromium while the page loads a CLIP folder, then a SAM 2 burnpack, through the
// worker exactly as a person's pick does (files streamed into wasm): the allocator's live and
// peak bytes and the module's linear memory (which never shrinks) after each, read off the page.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";
const [dist, clipFolder, sam2File, device = "cpu"] = process.argv.slice(2);
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const server = createServer(async (request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
  const file = join(dist, path === "/" ? "index.html" : path);
  try {
    const body = await readFile(file);
    response.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    response.end(body);
  } catch { response.writeHead(404).end(); }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--enable-unsafe-webgpu"] });
const context = await browser.newContext();
const page = await context.newPage();
page.on("console", (message) => message.type() === "error" && console.error(message.text()));
await page.goto(url);
await page.waitForFunction(() => document.body.dataset.engine === "ready", null, { timeout: 120000 });
if (device === "cpu") {
  await page.selectOption("#device-request", "cpu");
  await page.waitForFunction(() => document.body.dataset.device === "flex" && document.body.dataset.engine === "ready", null, { timeout: 120000 });
}
// {live, peak, reserved, limit} in MiB, as the page last read them from the engine.
const memory = () =>
  page.evaluate(() => Object.fromEntries(Object.entries(JSON.parse(document.body.dataset.memory)).map(([key, bytes]) => [key, Math.round(bytes / 1048576)])));
async function load(input, key, what) {
  const started = Date.now();
  await page.evaluate((k) => {
    delete document.body.dataset[k];
    delete document.body.dataset.memory;
  }, key);
  await page.setInputFiles(input, what);
  await page.waitForFunction((k) => document.body.dataset[k] && document.body.dataset.memory && !document.body.dataset.busy, key, { timeout: 600000 });
  const state = await page.evaluate((k) => document.body.dataset[k], key);
  return { state, seconds: (Date.now() - started) / 1000, memory: await memory() };
}
const clip = await load("#model-input", "model", clipFolder);
const sam2 = await load("#sam2-input", "sam2", sam2File);
console.log(JSON.stringify({ device: await page.evaluate(() => document.body.dataset.device), clip, sam2 }, null, 1));
await browser.close();
server.close();
