// The engine: every piece of model work runs here, in a dedicated Web Worker, so that the page's
// thread only draws and stays responsive while SAM 2 or CLIP compute for seconds. It owns the
// wasm module, the device, the models and the current image; the page talks to it by messages
// (see www/engine.js): {id, op, args} in; {id, type: "progress" | "done" | "error", …} out.
// Messages are handled strictly one at a time: wasm-side state (the models, SAM 2's last image
// embedding) must never be entered by a second request while the first awaits the device.
//
// The wasm package is imported dynamically: a static import would hold the handler back until the
// module compiled, and messages posted meanwhile would be lost.
let medfocus = null;
const loading = import("../pkg/medfocus.js").then((module) => (medfocus = module));

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

  async loadClip({ files }, progress) {
    state.clip?.free();
    state.clip = null;
    const contents = {};
    for (const [name, file] of files) contents[name] = await readFile(file, progress, `reading ${name}`);
    progress({ stage: "building the CLIP model on the device" });
    state.clip = medfocus.loadClip(contents);
    return { family: state.clip.family, imageSize: state.clip.imageSize };
  },

  async loadSam2({ file }, progress) {
    state.sam2?.free();
    state.sam2 = null;
    const bytes = await readFile(file, progress, `reading ${file.name}`);
    progress({ stage: "building SAM 2 on the device" });
    state.sam2 = medfocus.loadSam2(bytes);
    return { name: state.sam2.name, weights: state.sam2.weights, bytes: bytes.length };
  },

  async loadHead({ file }, progress) {
    state.head?.free();
    state.head = null;
    const bytes = await readFile(file, progress, `reading ${file.name}`);
    state.head = medfocus.loadHead(bytes);
    return describeHead(state.head);
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
};

let queue = Promise.resolve();

self.onmessage = ({ data: { id, op, args } }) => {
  queue = queue.then(async () => {
    await loading;
    const progress = (report) => self.postMessage({ id, type: "progress", ...report });
    try {
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

