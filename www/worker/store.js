import { streamInto } from "./io.js";
import { wasm } from "./wasm.js";

// Model storage: every model file that loaded is kept in the Origin Private File System (this
// origin's own disk space, never sent anywhere) with a manifest of names, sizes and SHA-256, so a
// later visit loads it from disk without asking, and checks every byte against the manifest.
// Models this site offers (models/manifest.json) are downloaded straight into the same store.
export const STORE = "medfocus-models";
export const storedName = (name) => encodeURIComponent(name); // OPFS names cannot hold "/"
export const SITE_SEEN = "site-manifest.json"; // the site's offer as last seen, beside the kinds
export const KINDS = ["clip", "sam2", "head"];

export async function storeRoot(create = false) {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(STORE, { create });
}

/** An empty folder for `kind`: what was stored under it goes first. */
export async function freshFolder(kind) {
  const root = await storeRoot(true);
  await root.removeEntry(kind, { recursive: true }).catch(() => {});
  return root.getDirectoryHandle(kind, { create: true });
}

export async function writeText(folder, name, text) {
  const handle = await folder.getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  await writable.write(text);
  await writable.close();
}

/** Written last: a kind without its manifest was not stored in full and counts as absent. */
export async function writeManifest(folder, manifest) {
  await writeText(folder, "manifest.json", JSON.stringify(manifest));
  if (navigator.storage.persist) await navigator.storage.persist().catch(() => false);
}

/** The stored files of `kind` as [[name, File]] (File: a handle on disk, not its bytes). */
export async function storedFiles(folder, manifest) {
  const files = [];
  for (const { name } of manifest.files) files.push([name, await (await folder.getFileHandle(storedName(name))).getFile()]);
  return files;
}

/** Replaces the stored `kind` with `files` ([[name, File]]) whose `hashes` are known. */
export async function store(kind, label, files, hashes) {
  const folder = await freshFolder(kind);
  for (const [name, file] of files) {
    const handle = await folder.getFileHandle(storedName(name), { create: true });
    const writable = await handle.createWritable();
    await writable.write(file); // a File is written from disk to disk, never held whole
    await writable.close();
  }
  const manifest = { kind, label, source: "picked", stored: new Date().toISOString(), files: hashes };
  await writeManifest(folder, manifest);
  return manifest;
}

/**
 * Streams `files` ([[name, File]]) into a fresh wasm ModelFiles; when they came from storage
 * (`expected`, its manifest), each must match its recorded size and SHA-256. Answers the
 * ModelFiles, to hand to a loader (which takes it over), and every file's {name, size, sha256}.
 */
export async function receive(files, label, expected, progress) {
  const model = new (wasm().ModelFiles)(label ?? "the chosen files");
  try {
    const hashes = [];
    for (const [name, file] of files) {
      const sha256 = await streamInto(model, name, file, progress, `reading ${name}`);
      if (expected) {
        const want = expected.files.find((entry) => entry.name === name);
        if (!want || want.size !== file.size || want.sha256 !== sha256) {
          throw new Error(`the stored copy of ${name} is damaged (its SHA-256 or size differs from when it was stored): forget the stored models and load them again`);
        }
      }
      hashes.push({ name, size: file.size, sha256 });
    }
    return { model, hashes };
  } catch (error) {
    model.free();
    throw error;
  }
}

/** After a load from the user's files: keep them (a failure to store only costs the next visit). */
export async function keep(kind, label, files, hashes, expected, persist, progress) {
  if (expected) return { manifest: expected };
  if (!persist) return {};
  progress({ stage: "keeping the files in this browser's storage" });
  try {
    return { manifest: await store(kind, label, files, hashes) };
  } catch (error) {
    return { storeError: error?.message ?? String(error) };
  }
}

// What storage holds: per kind, its manifest and files ([[name, File]]); a kind whose
// manifest is missing or unreadable (a store cut short) is left out.
export async function stored() {
  const found = {};
  let root;
  try {
    root = await storeRoot();
  } catch {
    return { kinds: found, usage: null };
  }
  for (const kind of KINDS) {
    try {
      const folder = await root.getDirectoryHandle(kind);
      const manifest = JSON.parse(await (await (await folder.getFileHandle("manifest.json")).getFile()).text());
      found[kind] = { manifest, files: await storedFiles(folder, manifest) };
    } catch {
      // Not stored, or stored incompletely: as if not stored.
    }
  }
  const estimate = await navigator.storage.estimate?.().catch(() => null);
  return { kinds: found, usage: estimate?.usage ?? null };
}

export async function forget() {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(STORE, { recursive: true }).catch((error) => {
    if (error?.name !== "NotFoundError") throw error;
  });
}
