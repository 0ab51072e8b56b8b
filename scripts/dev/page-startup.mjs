// Usage: node scripts/dev/page-startup.mjs DIST [RUNS]  (after scripts/serve.sh --build-only; a benchmark, not a test)
// Time to interactive of the built page (dist/): from navigation to the engine reporting ready
// (wasm fetched, compiled, instantiated in the worker, device chosen), fresh context each run.
import { launchChromium, serveDist } from "./dist-server.mjs";
const dist = process.argv[2];
const runs = Number(process.argv[3] ?? 3);
const server = await serveDist(dist);
const url = server.url;
const browser = await launchChromium();
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
