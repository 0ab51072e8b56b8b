// The engine: every piece of model work runs here, in a dedicated Web Worker, so that the page's
// thread only draws and stays responsive while SAM 2 or CLIP compute for seconds. It owns the
// wasm module, the device, the models, the current image and the stored model files (OPFS); the
// page talks to it by messages (see www/engine.js): {id, op, args} in; {id, type: "progress" |
// "done" | "error", …} out.
// Messages are handled strictly one at a time: wasm-side state (the models, SAM 2's last image
// embedding) must never be entered by a second request while the first awaits the device.
//
// The wasm package is imported dynamically: a static import would hold the handler back until the
// module compiled, and messages posted meanwhile would be lost.
let medfocus = null;
const loading = import("../pkg/medfocus.js").then(
  (module) => (medfocus = module),
  (error) => {
    throw new Error(`the engine's wasm module did not load (${error?.message ?? error}); reload the page`);
  },
);

const state = {
  device: null,
  clip: null,
  sam2: null,
  head: null,
  // The image the page shows: its file bytes (decoded again only when it changes, in wasm).
  image: null,
};

// Progress is reported every few MiB of a file, and at its end.
const REPORT_EVERY = 4 << 20;

/** A File's bytes, read in pieces (an image: small, and needed whole). */
async function readFile(file, progress, stage) {
  const bytes = new Uint8Array(file.size);
  const reader = file.stream().getReader();
  let done = 0;
  let lastReport = 0;
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (finished) break;
    if (done + value.length > bytes.length) throw new Error(`${file.name} grew while it was read`);
    bytes.set(value, done);
    done += value.length;
    if (done - lastReport > REPORT_EVERY || done === bytes.length) {
      progress({ stage, done, total: bytes.length });
      lastReport = done;
    }
  }
  if (done !== bytes.length) throw new Error(`${file.name}: read ${done} of ${bytes.length} bytes`);
  return bytes;
}

/**
 * Streams `file` into `model` (a wasm ModelFiles) as `name`, piece by piece: neither side ever
 * holds the whole file (a checkpoint turns into tensors as it arrives). Answers its SHA-256.
 */
async function streamInto(model, name, file, progress, stage) {
  model.begin(name, file.size);
  const reader = file.stream().getReader();
  let done = 0;
  let lastReport = 0;
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (finished) break;
    model.push(value);
    done += value.length;
    if (done - lastReport > REPORT_EVERY || done === file.size) {
      progress({ stage, done, total: file.size });
      lastReport = done;
    }
  }
  return model.end();
}

// ---------------------------------------------------------------------------------------------
// Model storage: every model file that loaded is kept in the Origin Private File System (this
// origin's own disk space, never sent anywhere) with a manifest of names, sizes and SHA-256, so a
// later visit loads it from disk without asking, and checks every byte against the manifest.
// Models this site offers (models/manifest.json) are downloaded straight into the same store.
const STORE = "medfocus-models";
const storedName = (name) => encodeURIComponent(name); // OPFS names cannot hold "/"
const SITE_SEEN = "site-manifest.json"; // the site's offer as last seen, beside the kinds
const KINDS = ["clip", "sam2", "head"];

async function storeRoot(create = false) {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(STORE, { create });
}

/** An empty folder for `kind`: what was stored under it goes first. */
async function freshFolder(kind) {
  const root = await storeRoot(true);
  await root.removeEntry(kind, { recursive: true }).catch(() => {});
  return root.getDirectoryHandle(kind, { create: true });
}

async function writeText(folder, name, text) {
  const handle = await folder.getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  await writable.write(text);
  await writable.close();
}

/** Written last: a kind without its manifest was not stored in full and counts as absent. */
async function writeManifest(folder, manifest) {
  await writeText(folder, "manifest.json", JSON.stringify(manifest));
  if (navigator.storage.persist) await navigator.storage.persist().catch(() => false);
}

/** The stored files of `kind` as [[name, File]] (File: a handle on disk, not its bytes). */
async function storedFiles(folder, manifest) {
  const files = [];
  for (const { name } of manifest.files) files.push([name, await (await folder.getFileHandle(storedName(name))).getFile()]);
  return files;
}

/** Replaces the stored `kind` with `files` ([[name, File]]) whose `hashes` are known. */
async function store(kind, label, files, hashes) {
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
async function receive(files, label, expected, progress) {
  const model = new medfocus.ModelFiles(label ?? "the chosen files");
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
async function keep(kind, label, files, hashes, expected, persist, progress) {
  if (expected) return { manifest: expected };
  if (!persist) return {};
  progress({ stage: "keeping the files in this browser's storage" });
  try {
    return { manifest: await store(kind, label, files, hashes) };
  } catch (error) {
    return { storeError: error?.message ?? String(error) };
  }
}

/** A WebAssembly abort is out of memory when the module's memory stands at its 4 GiB cap. */
function outOfMemory() {
  try {
    const memory = medfocus?.engineMemory();
    return memory && memory.reserved >= memory.limit - (64 << 20) ? memory : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// This site's models: models/manifest.json beside the page (written by `medfocus weights
// export-web`), checked before anything of it is used.

const SHA256 = /^[0-9a-f]{64}$/;

function checkSiteManifest(manifest) {
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
async function siteSeen() {
  try {
    const root = await storeRoot();
    return JSON.parse(await (await (await root.getFileHandle(SITE_SEEN)).getFile()).text());
  } catch {
    return null;
  }
}

/** Whether a stored model holds exactly the files a site model lists. */
function sameFiles(stored, offered) {
  if (!stored || stored.files.length !== offered.files.length) return false;
  return offered.files.every((file) => stored.files.some((have) => have.name === file.name && have.size === file.size && have.sha256 === file.sha256));
}

function need(what, value, remedy) {
  if (!value) throw new Error(`no ${what}: ${remedy}`);
  return value;
}

function imageBytes() {
  return need("image", state.image, "drop or choose an image first").bytes;
}

function describeHead(head) {
  return {
    kind: head.kind,
    classes: head.classes,
    focus: head.focus,
    needsMask: head.needsMask,
    masks: head.masks,
    automatic: head.automatic,
    clipName: head.clipName,
  };
}

const ops = {
  async init({ request }) {
    state.device = await medfocus.initDevice(request);
    return state.device;
  },

  async check({ size }) {
    return medfocus.checkDevice(size);
  },

  async decode({ file }, progress) {
    const bytes = await readFile(file, progress, `reading ${file.name}`);
    progress({ stage: `decoding ${file.name}` });
    const image = medfocus.decodeImage(bytes);
    try {
      const rgba = image.rgba();
      state.image = { bytes, name: file.name };
      return {
        value: {
          name: file.name,
          format: image.format,
          width: image.width,
          height: image.height,
          channels: image.channels,
          bitsPerChannel: image.bitsPerChannel,
          layout: image.layout,
          greyContent: image.greyContent,
          notes: image.notes,
          rgba,
        },
        transfer: [rgba.buffer],
      };
    } finally {
      image.free();
    }
  },

  // Each load takes the files ([[name, File]]), a label (the CLIP folder's name), for files that
  // came from storage the manifest to check them against, and whether to store files the user
  // gave (not on a reload after a restart); it answers with the manifest they are stored under
  // (or why they could not be stored).
  async loadClip({ files, label, stored, persist }, progress) {
    state.clip?.free();
    state.clip = null;
    const { model, hashes } = await receive(files, label, stored, progress);
    progress({ stage: "building the CLIP model on the device" });
    state.clip = medfocus.loadClip(model);
    const kept = await keep("clip", label, files, hashes, stored, persist, progress);
    return { family: state.clip.family, imageSize: state.clip.imageSize, ...kept };
  },

  async loadSam2({ files, label, stored, persist }, progress) {
    state.sam2?.free();
    state.sam2 = null;
    const { model, hashes } = await receive(files, label, stored, progress);
    progress({ stage: "building SAM 2 on the device" });
    state.sam2 = medfocus.loadSam2(model);
    const kept = await keep("sam2", label, files, hashes, stored, persist, progress);
    return { name: state.sam2.name, weights: state.sam2.weights, bytes: hashes[0].size, ...kept };
  },

  async loadHead({ files, label, stored, persist }, progress) {
    state.head?.free();
    state.head = null;
    const { model, hashes } = await receive(files, label, stored, progress);
    state.head = medfocus.loadHead(model);
    const kept = await keep("head", label, files, hashes, stored, persist, progress);
    return { ...describeHead(state.head), ...kept };
  },

  // This site's offer: {manifest (null when the site has none), seen (the offer as last seen,
  // from storage)}. With `ask` false, the site is asked only when a model it offered last time
  // is not stored: a visit that has everything makes no request at all.
  async siteModels({ base, ask }) {
    const seen = await siteSeen();
    if (!ask && seen) {
      const stored = (await ops.stored()).kinds;
      const complete = seen.models.every((model) => sameFiles(stored[model.kind]?.manifest, model));
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
  },

  // Downloads one model the site offers straight into storage, each file hashed as it arrives
  // and checked against the site's manifest (a mismatch keeps nothing); answers the stored
  // manifest and files, which the page then loads like any stored model.
  async download({ model, base }, progress) {
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
        const hasher = new medfocus.Sha256();
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
  },

  async memory() {
    return medfocus.engineMemory();
  },

  // What storage holds: per kind, its manifest and files ([[name, File]]); a kind whose
  // manifest is missing or unreadable (a store cut short) is left out.
  async stored() {
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
  },

  async forget() {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry(STORE, { recursive: true }).catch((error) => {
      if (error?.name !== "NotFoundError") throw error;
    });
  },

  async unload({ what }) {
    state[what]?.free();
    state[what] = null;
  },

  async view({ options }) {
    const clip = need("CLIP model", state.clip, "load one first");
    const view = await clip.view(imageBytes(), options);
    return { value: view, transfer: [view.focused.buffer, view.input.buffer] };
  },

  async segment({ options }, progress) {
    const sam2 = need("SAM 2 model", state.sam2, "load one first");
    progress({ stage: options.auto ? "SAM 2: image encoder, then the automatic point grid" : "SAM 2: the prompt" });
    return sam2.segment(imageBytes(), options, (stage, done, total) => progress(total > 1 ? { stage, done, total } : { stage }));
  },

  async classify({ classes, options }, progress) {
    const clip = need("CLIP model", state.clip, "load one first");
    progress({ stage: `CLIP: ${options.focus ?? "none"} focus` });
    return clip.classify(imageBytes(), classes, options);
  },

  // One image under several focus methods, each answered or failed on its own.
  async compare({ classes, focuses, options }, progress) {
    const clip = need("CLIP model", state.clip, "load one first");
    const results = [];
    for (const [index, focus] of focuses.entries()) {
      progress({ stage: `CLIP: ${focus} focus`, done: index, total: focuses.length });
      try {
        results.push({ focus, result: await clip.classify(imageBytes(), classes, { ...options, focus }) });
      } catch (error) {
        results.push({ focus, error: error.message ?? String(error) });
      }
    }
    return results;
  },

  async classifyWithHead({ options, onSam2 }, progress) {
    const clip = need("CLIP model", state.clip, "load the model the head was trained on");
    const head = need("head", state.head, "load a head file first");
    if (onSam2) {
      const sam2 = need("SAM 2 model", state.sam2, "this head was trained on SAM 2's automatic masks; load SAM 2 to classify as it was trained");
      progress({ stage: "SAM 2's automatic masks with the head's settings, then CLIP and the head" });
      return clip.classifyWithHeadOnSam2(imageBytes(), head, sam2);
    }
    progress({ stage: "CLIP and the head" });
    return clip.classifyWithHead(imageBytes(), head, options);
  },

  // Few-shot training: the page's class bins, embedded image by image (a progress report after
  // each, so cancel — a worker restart — is never far), then a head trained in wasm. Nothing is
  // kept between trainings: the page holds the files, the worker only their embeddings, briefly.
  async train({ classes, bins, focusOptions, trainOptions }, progress) {
    const clip = need("CLIP model", state.clip, "load one first");
    const onSam2 = focusOptions.focus && focusOptions.focus !== "none";
    const set = onSam2
      ? medfocus.supportSetOnSam2(classes, focusOptions, need("SAM 2 model", state.sam2, `the ${focusOptions.focus} focus trains on SAM 2's automatic masks: load SAM 2, or train with the focus none`))
      : medfocus.supportSet(classes, focusOptions);
    try {
      const total = bins.reduce((sum, files) => sum + files.length, 0);
      const skipped = [];
      let done = 0;
      for (const [label, files] of bins.entries()) {
        for (const file of files) {
          progress({ stage: `embedding ${classes[label]}: ${file.name}${onSam2 ? " (SAM 2, then CLIP)" : ""}`, done, total });
          try {
            const bytes = await readFile(file, () => {}, file.name);
            await set.add(clip, bytes, label);
          } catch (error) {
            if (error instanceof WebAssembly.RuntimeError) throw error;
            skipped.push(`${classes[label]}/${file.name}: ${error?.message ?? error}`);
          }
          done += 1;
        }
      }
      progress({ stage: `training the ${trainOptions.kind ?? "linear-probe"} head`, done, total });
      const trained = await set.train(clip, trainOptions);
      return {
        value: { ...trained, skipped, warnings: set.warnings },
        transfer: [trained.head.buffer],
      };
    } finally {
      set.free();
    }
  },
};

let queue = Promise.resolve();

self.onmessage = ({ data: { id, op, args } }) => {
  queue = queue.then(async () => {
    const progress = (report) => self.postMessage({ id, type: "progress", ...report });
    try {
      // A module that failed to load fails every request, saying why, instead of leaving it unanswered.
      await loading;
      const handler = ops[op];
      if (!handler) throw new Error(`unknown operation ${op}`);
      const answer = await handler(args ?? {}, progress);
      // An op returns either a plain value or {value, transfer} to hand buffers over uncopied.
      if (answer && typeof answer === "object" && "transfer" in answer && "value" in answer) {
        self.postMessage({ id, type: "done", value: answer.value }, answer.transfer);
      } else {
        self.postMessage({ id, type: "done", value: answer });
      }
    } catch (error) {
      // A Rust panic aborts the wasm module (a RuntimeError): nothing in it can be trusted any
      // more, and the page must start a fresh engine.
      const fatal = error instanceof WebAssembly.RuntimeError;
      let message = error?.message ?? String(error);
      const memory = fatal && outOfMemory();
      if (memory) {
        message = `the engine ran out of memory: its WebAssembly memory reached ${Math.round(memory.reserved / 1048576)} MiB, the browser's cap for a page (${message}); the engine restarts — load fewer or smaller models`;
      }
      self.postMessage({ id, type: "error", message, fatal });
    }
  });
};

