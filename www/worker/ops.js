// The engine's operations, by name: each takes the request's arguments and a progress callback
// and answers a value (or {value, transfer} to hand buffers over uncopied). They own the models
// and the current image; the message loop (../worker.js) runs one at a time.
import { readFile } from "./io.js";
import { download, siteModels } from "./site.js";
import { forget, keep, receive, stored } from "./store.js";
import { useThreads, wasm } from "./wasm.js";

const state = {
  device: null,
  clip: null,
  sam2: null,
  head: null,
  // The image the page shows: its file bytes (decoded again only when it changes, in wasm).
  image: null,
};

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

export const ops = {
  async init({ request }) {
    state.device = await wasm().initDevice(request);
    if (state.device.kind === "cpu") {
      // The CPU on every core where the page allows threads; the choice and its reason stay.
      let threads;
      try {
        threads = await useThreads();
      } catch (error) {
        threads = { threads: 1, why: `the threaded module did not load (${error?.message ?? error})` };
      }
      state.device = { ...state.device, threads: threads.threads, threadsWhy: threads.why };
    }
    return state.device;
  },

  async check({ size }) {
    return wasm().checkDevice(size);
  },

  async decode({ file }, progress) {
    const bytes = await readFile(file, progress, `reading ${file.name}`);
    progress({ stage: `decoding ${file.name}` });
    const image = wasm().decodeImage(bytes);
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
    state.clip = wasm().loadClip(model);
    const kept = await keep("clip", label, files, hashes, stored, persist, progress);
    // What names this checkpoint in a result file: the folder's name and each file's SHA-256.
    const identity = { name: label, files: hashes };
    return { family: state.clip.family, imageSize: state.clip.imageSize, defaultTemplates: state.clip.defaultTemplates, ...identity, ...kept };
  },

  async loadSam2({ files, label, stored, persist }, progress) {
    state.sam2?.free();
    state.sam2 = null;
    const { model, hashes } = await receive(files, label, stored, progress);
    progress({ stage: "building SAM 2 on the device" });
    state.sam2 = wasm().loadSam2(model);
    const kept = await keep("sam2", label, files, hashes, stored, persist, progress);
    return { name: state.sam2.name, weights: state.sam2.weights, bytes: hashes[0].size, ...kept };
  },

  async loadHead({ files, label, stored, persist }, progress) {
    state.head?.free();
    state.head = null;
    const { model, hashes } = await receive(files, label, stored, progress);
    state.head = wasm().loadHead(model);
    const kept = await keep("head", label, files, hashes, stored, persist, progress);
    return { ...describeHead(state.head), ...kept };
  },

  siteModels,
  download,

  async memory() {
    return wasm().engineMemory();
  },

  stored,
  forget,

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
      return clip.classifyWithHeadOnSam2(imageBytes(), head, sam2, { explain: options.explain });
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
      ? wasm().supportSetOnSam2(classes, focusOptions, need("SAM 2 model", state.sam2, `the ${focusOptions.focus} focus trains on SAM 2's automatic masks: load SAM 2, or train with the focus none`))
      : wasm().supportSet(classes, focusOptions);
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
