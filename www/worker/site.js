// This site's models: models/manifest.json beside the page (written by `medfocus weights
// export-web`), checked before anything of it is used, and downloaded straight into storage.
import { REPORT_EVERY } from "./io.js";
import { KINDS, SITE_SEEN, freshFolder, storeRoot, storedFiles, storedName, stored, writeManifest, writeText } from "./store.js";
import { wasm } from "./wasm.js";

const SHA256 = /^[0-9a-f]{64}$/;

export function checkSiteManifest(manifest) {
  const bad = (detail) => {
    throw new Error(`this site's models/manifest.json is not valid: ${detail}`);
  };
  if (manifest?.format !== "medfocus-site-models") bad("its format is not medfocus-site-models");
  if (manifest.version !== 1) bad(`version ${manifest.version} (this page reads version 1)`);
  if (!Array.isArray(manifest.models)) bad("no list of models");
  const kinds = new Set();
  for (const model of manifest.models) {
    if (!KINDS.includes(model?.kind)) bad(`a model of kind ${model?.kind} (known: ${KINDS.join(", ")})`);
    if (kinds.has(model.kind)) bad(`two ${model.kind} models (the page holds one of each)`);
    kinds.add(model.kind);
    if (typeof model.label !== "string" || !model.label) bad(`the ${model.kind} model has no label`);
    if (!Array.isArray(model.files) || model.files.length === 0) bad(`the ${model.kind} model lists no files`);
    for (const file of model.files) {
      if (typeof file?.name !== "string" || !file.name) bad(`a ${model.kind} file has no name`);
      // Relative, inside the models folder: nothing is fetched from elsewhere.
      if (typeof file.path !== "string" || !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(file.path) || file.path.split("/").includes("..")) {
        bad(`${file.name}: its path ${JSON.stringify(file.path)} is not a plain path inside models/`);
      }
      if (!Number.isSafeInteger(file.size) || file.size < 0) bad(`${file.name}: its size is not a byte count`);
      if (typeof file.sha256 !== "string" || !SHA256.test(file.sha256)) bad(`${file.name}: its sha256 is not 64 hex digits`);
    }
  }
  return manifest;
}

/** The site's offer as last seen (kept in storage: a later visit need not ask the site). */
export async function siteSeen() {
  try {
    const root = await storeRoot();
    return JSON.parse(await (await (await root.getFileHandle(SITE_SEEN)).getFile()).text());
  } catch {
    return null;
  }
}

/** Whether a stored model holds exactly the files a site model lists. */
export function sameFiles(stored, offered) {
  if (!stored || stored.files.length !== offered.files.length) return false;
  return offered.files.every((file) => stored.files.some((have) => have.name === file.name && have.size === file.size && have.sha256 === file.sha256));
}

// This site's offer: {manifest (null when the site has none), seen (the offer as last seen,
// from storage)}. With `ask` false, the site is asked only when a model it offered last time
// is not stored: a visit that has everything makes no request at all.
export async function siteModels({ base, ask }) {
  const seen = await siteSeen();
  if (!ask && seen) {
    const kinds = (await stored()).kinds;
    const complete = seen.models.every((model) => sameFiles(kinds[model.kind]?.manifest, model));
    if (complete) return { manifest: seen, fromStorage: true };
  }
  let response;
  try {
    response = await fetch(new URL("models/manifest.json", base), { cache: "no-store" });
  } catch (error) {
    // Offline: the last offer seen stands.
    return { manifest: seen, fromStorage: true, offline: error?.message ?? String(error) };
  }
  if (response.status === 404) return { manifest: null };
  if (!response.ok) throw new Error(`this site's models/manifest.json: the server answered ${response.status} ${response.statusText}`);
  let manifest;
  try {
    manifest = await response.json();
  } catch {
    throw new Error("this site's models/manifest.json is not JSON");
  }
  checkSiteManifest(manifest);
  await writeText(await storeRoot(true), SITE_SEEN, JSON.stringify(manifest));
  return { manifest };
}

// Downloads one model the site offers straight into storage, each file hashed as it arrives
// and checked against the site's manifest (a mismatch keeps nothing); answers the stored
// manifest and files, which the page then loads like any stored model.
export async function download({ model, base }, progress) {
  const site = new URL("models/", base);
  const total = model.files.reduce((sum, file) => sum + file.size, 0);
  const folder = await freshFolder(model.kind);
  let done = 0;
  let lastReport = 0;
  try {
    for (const entry of model.files) {
      const url = new URL(entry.path, site);
      if (url.origin !== site.origin || !url.pathname.startsWith(site.pathname)) throw new Error(`${entry.path} is not inside this site's models folder`);
      const stage = `downloading ${entry.name}`;
      progress({ stage, done, total, bytes: true });
      const response = await fetch(url, { cache: "no-store" });
      if (!response.ok) throw new Error(`${url.pathname}: the server answered ${response.status} ${response.statusText}`);
      const handle = await folder.getFileHandle(storedName(entry.name), { create: true });
      const writable = await handle.createWritable();
      const hasher = new (wasm().Sha256)();
      let received = 0;
      try {
        const reader = response.body.getReader();
        for (;;) {
          const { value, done: finished } = await reader.read();
          if (finished) break;
          received += value.length;
          if (received > entry.size) throw new Error(`${url.pathname} is longer than the ${entry.size} bytes this site's manifest lists`);
          hasher.update(value);
          await writable.write(value);
          done += value.length;
          if (done - lastReport > REPORT_EVERY) {
            progress({ stage, done, total, bytes: true });
            lastReport = done;
          }
        }
        await writable.close();
      } catch (error) {
        hasher.free();
        await writable.abort().catch(() => {});
        throw error;
      }
      const sha256 = hasher.finish();
      if (received !== entry.size) throw new Error(`${url.pathname} is truncated: ${received} of the ${entry.size} bytes this site's manifest lists arrived`);
      if (sha256 !== entry.sha256) {
        throw new Error(`${url.pathname} differs from this site's manifest (SHA-256 ${sha256.slice(0, 12)}…, listed ${entry.sha256.slice(0, 12)}…): the site's models folder is damaged or half-updated`);
      }
    }
  } catch (error) {
    // Nothing of a failed download stays: a later visit must not find half a model.
    await (await storeRoot(true)).removeEntry(model.kind, { recursive: true }).catch(() => {});
    throw new Error(`downloading ${model.label}: ${error?.message ?? error}; nothing was kept`);
  }
  progress({ stage: `checked ${model.label} (SHA-256)`, done, total, bytes: true });
  const manifest = {
    kind: model.kind,
    label: model.label,
    source: "site",
    stored: new Date().toISOString(),
    files: model.files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
  };
  await writeManifest(folder, manifest);
  return { manifest, files: await storedFiles(folder, manifest) };
}
