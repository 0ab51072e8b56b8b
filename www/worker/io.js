// Reading the page's Files in pieces, with progress.

// Progress is reported every few MiB of a file, and at its end.
export const REPORT_EVERY = 4 << 20;

/** A File's bytes, read in pieces (an image: small, and needed whole). */
export async function readFile(file, progress, stage) {
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
export async function streamInto(model, name, file, progress, stage) {
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
