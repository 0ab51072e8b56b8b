// Usage: node scripts/dev/page-startup.mjs DIST [RUNS]  (after scripts/serve.sh --build-only; a benchmark, not a test)
// Time to interactive of the built page (dist/): from navigation to the engine reporting ready
// (wasm fetched, compiled, instantiated in the worker, device chosen), fresh context each run.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";
const dist = process.argv[2];
const runs = Number(process.argv[3] ?? 3);
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
const times = [];
const devices = [];
for (let run = 0; run < runs; run++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (message) => message.type() === "error" && console.error(message.text()));
  const started = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.engine === "ready", null, { timeout: 60000 });
  times.push(Date.now() - started);
  // "error" means the engine did not start: the time is then not a startup time.
  devices.push(await page.evaluate(() => document.body.dataset.device));
  await context.close();
}
console.log(JSON.stringify({ dist, times, devices }));
await browser.close();
server.close();
