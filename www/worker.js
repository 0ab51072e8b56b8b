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

// Files are read in pieces so that loading a 600 MB checkpoint shows how far it got.
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
    if (done - lastReport > 4 << 20 || done === bytes.length) {
      progress({ stage, done, total: bytes.length });
      lastReport = done;
    }
  }
  if (done !== bytes.length) throw new Error(`${file.name}: read ${done} of ${bytes.length} bytes`);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Model storage: every model file that loaded is kept in the Origin Private File System (this
// origin's own disk space, never sent anywhere) with a manifest of names, sizes and SHA-256, so a
// later visit loads it from disk without asking, and checks every byte against the manifest.
const STORE = "medfocus-models";
const storedName = (name) => encodeURIComponent(name); // OPFS names cannot hold "/"

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function storeRoot(create = false) {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(STORE, { create });
}

/** Replaces the stored `kind` with `files` ([[name, bytes]]): written in full, manifest last. */
async function store(kind, label, files) {
  const root = await storeRoot(true);
  await root.removeEntry(kind, { recursive: true }).catch(() => {});
  const folder = await root.getDirectoryHandle(kind, { create: true });
  const manifest = { kind, label, stored: new Date().toISOString(), files: [] };
  for (const [name, bytes] of files) {
    const handle = await folder.getFileHandle(storedName(name), { create: true });
    const writable = await handle.createWritable();
    await writable.write(bytes);
    await writable.close();
    manifest.files.push({ name, size: bytes.length, sha256: await sha256(bytes) });
  }
  const handle = await folder.getFileHandle("manifest.json", { create: true });
  const writable = await handle.createWritable();
  await writable.write(JSON.stringify(manifest));
  await writable.close();
  if (navigator.storage.persist) await navigator.storage.persist().catch(() => false);
  return manifest;
}

/** Loads `files` ([[name, File]]): their bytes, and when they came from storage, checked. */
async function readAll(files, expected, progress) {
  const contents = [];
  for (const [name, file] of files) {
    const bytes = await readFile(file, progress, `reading ${name}`);
    const want = expected?.files.find((entry) => entry.name === name);
    if (expected) {
      progress({ stage: `checking ${name} (SHA-256)` });
      if (!want || want.size !== bytes.length || want.sha256 !== (await sha256(bytes))) {
        throw new Error(`the stored copy of ${name} is damaged (its SHA-256 or size differs from when it was stored): forget the stored models and choose the files again`);
      }
    }
    contents.push([name, bytes]);
  }
  return contents;
}

/** After a load from the user's files: keep them (a failure to store only costs the next visit). */
async function keep(kind, label, contents, expected, persist, progress) {
  if (expected) return { manifest: expected };
  if (!persist) return {};
  progress({ stage: "keeping the files in this browser's storage" });
  try {
    return { manifest: await store(kind, label, contents) };
  } catch (error) {
    return { storeError: error?.message ?? String(error) };
  }
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
    const contents = await readAll(files, stored, progress);
    progress({ stage: "building the CLIP model on the device" });
    state.clip = medfocus.loadClip(Object.fromEntries(contents));
    const kept = await keep("clip", label, contents, stored, persist, progress);
    return { family: state.clip.family, imageSize: state.clip.imageSize, ...kept };
  },

  async loadSam2({ files, label, stored, persist }, progress) {
    state.sam2?.free();
    state.sam2 = null;
    const contents = await readAll(files, stored, progress);
    progress({ stage: "building SAM 2 on the device" });
    state.sam2 = medfocus.loadSam2(contents[0][1]);
    const kept = await keep("sam2", label, contents, stored, persist, progress);
    return { name: state.sam2.name, weights: state.sam2.weights, bytes: contents[0][1].length, ...kept };
  },

  async loadHead({ files, label, stored, persist }, progress) {
    state.head?.free();
    state.head = null;
    const contents = await readAll(files, stored, progress);
    state.head = medfocus.loadHead(contents[0][1]);
    const kept = await keep("head", label, contents, stored, persist, progress);
    return { ...describeHead(state.head), ...kept };
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
    for (const kind of ["clip", "sam2", "head"]) {
      try {
        const folder = await root.getDirectoryHandle(kind);
        const manifest = JSON.parse(await (await (await folder.getFileHandle("manifest.json")).getFile()).text());
        const files = [];
        for (const { name } of manifest.files) files.push([name, await (await folder.getFileHandle(storedName(name))).getFile()]);
        found[kind] = { manifest, files };
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
    progress({ stage: options.auto ? "SAM 2: image encoder, then the automatic point grid" : "SAM 2: image encoder, then the prompt" });
    return sam2.segment(imageBytes(), options);
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
      self.postMessage({ id, type: "error", message: error?.message ?? String(error), fatal });
    }
  });
};

