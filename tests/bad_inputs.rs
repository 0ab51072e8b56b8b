//! Issue 16: every file of the bad-input corpus (`scripts/reference/gen_bad_inputs.py` →
//! `tests/fixtures/bad-inputs/`) through every loader, natively. Each must give a named error —
//! not a panic, not an allocation past the limits — except the valid seeds in their own loader;
//! a loader's own format gets an error that says what is wrong with it (cut short, not this
//! format, too large…), checked by word. A counting allocator (this test binary's global one)
//! measures the most memory each call held at once.
#![cfg(not(target_arch = "wasm32"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::Device;
use medfocus::clip::load::load_clip_dir;
use medfocus::dataset::Dataset;
use medfocus::limits::MAX_DECODED_BYTES;
use medfocus::sam2::Sam2Model;
use medfocus::weights::Checkpoint;
mod common;
use common::bad_inputs::{Entry, accepts, byte_loaders, entries, own_loader};
use common::cli::{fixture, medfocus, walk};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, size) };
        if !moved.is_null() {
            if size > layout.size() {
                let live =
                    LIVE.fetch_add(size - layout.size(), Ordering::Relaxed) + size - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - size, Ordering::Relaxed);
            }
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most a loader may hold at once for one of these small files: the largest limit (an
/// image's decoded buffer), plus room for the loader's own working memory.
const MAX_HELD_BYTES: usize = MAX_DECODED_BYTES as usize + (64 << 20);

fn fixtures() -> PathBuf {
    common::manifest().join("tests/fixtures")
}

/// A loader, as a function of the file's path and bytes giving its error's text.
type Loader = Box<dyn Fn(&Path, &[u8], &Device) -> Result<(), String>>;

/// The loaders that read bytes (`common::bad_inputs::byte_loaders`, the browser's too) and
/// those that read a path.
fn loaders() -> Vec<(&'static str, Loader)> {
    let mut loaders: Vec<(&'static str, Loader)> = byte_loaders()
        .into_iter()
        .map(|(name, load)| {
            let loader: Loader = Box::new(move |_, bytes, device| load(bytes, device));
            (name, loader)
        })
        .collect();
    let by_path: [(&'static str, fn(&Path, &Device) -> Result<(), String>); 5] = [
        ("checkpoint file", |path, _| {
            Checkpoint::open(path).map(drop).map_err(|e| e.to_string())
        }),
        ("sam2 weights file", |path, device| {
            Sam2Model::load_file(path, None, device)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("data set", |path, _| {
            // Rows it cannot use are kept aside with their reasons (what `inspect` shows): for
            // this test those are the named errors.
            let set = Dataset::open(path, None).map_err(|e| e.to_string())?;
            match set.skipped.first() {
                Some(skipped) => Err(format!("skipped {skipped}")),
                None => Ok(()),
            }
        }),
        ("clip weights", |path, device| {
            let dir = path.with_extension("clip-weights");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(
                fixtures().join("clip/openclip-tiny/open_clip_config.json"),
                dir.join("open_clip_config.json"),
            )
            .unwrap();
            std::fs::copy(path, dir.join("open_clip_model.safetensors")).unwrap();
            load_clip_dir(&dir, device)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("clip config", |path, device| {
            let dir = path.with_extension("clip-config");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(path, dir.join("open_clip_config.json")).unwrap();
            std::fs::copy(
                fixtures().join("clip/openclip-tiny/open_clip_model.safetensors"),
                dir.join("open_clip_model.safetensors"),
            )
            .unwrap();
            load_clip_dir(&dir, device)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
    ];
    for (name, load) in by_path {
        loaders.push((name, Box::new(move |path, _, device| load(path, device))));
    }
    loaders
}

/// Words one of which the error must contain when a loader meets its own format broken. Text
/// formats have no magic: any named error will do for theirs.
fn expected_words(format: &str, case: &str) -> &'static [&'static str] {
    let text = matches!(
        format,
        "split-json" | "csv" | "clip-config" | "sam2-config" | "vocab"
    );
    if case == "empty" {
        &["empty", "0 bytes", "no image", "none of the listed"]
    } else if case.starts_with("truncated") {
        &[
            "truncated",
            "cut",
            "ended",
            "ends",
            "end of",
            "short",
            "eof",
            "incomplete",
            "missing",
            "not a",
            "corrupt",
            "unrecognised",
            "invalid",
            "lacks",
        ]
    } else if case == "wrong-magic" && !text {
        &[
            "not a",
            "unrecognised",
            "not supported",
            "invalid",
            "corrupt",
            "unknown",
        ]
    } else {
        &[""]
    }
}

#[test]
fn every_bad_input_is_a_named_error_through_every_loader() {
    let root = fixtures().join("bad-inputs");
    let corpus = std::fs::read(root.join("corpus.bin")).unwrap();
    let index: Vec<Entry> = entries(&std::fs::read_to_string(root.join("index.json")).unwrap());
    assert!(index.len() > 150, "{} files", index.len());
    let dir = std::env::temp_dir().join(format!("medfocus-bad-inputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let device = Device::flex();
    // The images the split file and the CSV list, beside them.
    let png = index
        .iter()
        .find(|entry| entry.format == "png" && entry.case == "valid")
        .unwrap();
    for name in ["a.png", "b.png"] {
        std::fs::write(dir.join(name), png.bytes(&corpus)).unwrap();
    }
    // Quiet the default hook: a panic is recorded here, with the file and loader that caused it.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));

    let mut failures = Vec::new();
    let mut named = 0usize;
    let mut most_held: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in &index {
        let bytes = entry.bytes(&corpus);
        let path = dir.join(&entry.name);
        std::fs::write(&path, bytes).unwrap();
        let own = own_loader(&entry.format);
        for (loader, load) in loaders() {
            let before = LIVE.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let outcome = catch_unwind(AssertUnwindSafe(|| load(&path, bytes, &device)));
            let held = PEAK.load(Ordering::Relaxed).saturating_sub(before);
            let slot = most_held.entry(loader).or_default();
            *slot = (*slot).max(held);
            let what = format!("{} ({}) through {loader}", entry.name, entry.case);
            if held > MAX_HELD_BYTES {
                failures.push(format!("{what}: held {} MB at once", held >> 20));
            }
            let valid_here = accepts(loader, entry);
            match outcome {
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures.push(format!("{what}: PANIC {message}"));
                }
                Ok(Ok(())) if valid_here => {}
                Ok(Ok(())) => failures.push(format!("{what}: accepted")),
                Ok(Err(error)) if valid_here => failures.push(format!("{what}: refused: {error}")),
                Ok(Err(error)) => {
                    named += 1;
                    let lower = error.to_lowercase();
                    if error.trim().is_empty() {
                        failures.push(format!("{what}: an empty error"));
                    } else if loader == own
                        && !expected_words(&entry.format, &entry.case)
                            .iter()
                            .any(|word| lower.contains(word))
                    {
                        failures.push(format!("{what}: the error does not say why: {error}"));
                    }
                    if std::env::var_os("MEDFOCUS_SHOW_ERRORS").is_some() && loader == own {
                        println!("{what}: {error}");
                    }
                }
            }
        }
    }
    std::panic::set_hook(hook);
    let _ = std::fs::remove_dir_all(&dir);
    let calls = index.len() * loaders().len();
    println!(
        "{} files × {} loaders = {calls} calls: {named} named errors; most held at once per loader (MB): {:?}",
        index.len(),
        loaders().len(),
        most_held
            .iter()
            .map(|(loader, held)| (*loader, held >> 20))
            .collect::<Vec<_>>()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The corpus through the command line: each command given a broken input of its kind fails
/// with a message (no panic), and the outputs it would write — present from an earlier run —
/// are left as they were, with nothing written beside them.
#[test]
fn commands_given_bad_input_fail_clearly_and_leave_their_outputs_untouched() {
    let root = fixtures().join("bad-inputs");
    let corpus = std::fs::read(root.join("corpus.bin")).unwrap();
    let index = entries(&std::fs::read_to_string(root.join("index.json")).unwrap());
    let dir = std::env::temp_dir().join(format!("medfocus-bad-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let inputs = dir.join("inputs");
    let outputs = dir.join("outputs");
    std::fs::create_dir_all(&inputs).unwrap();
    let clip = fixture("clip/openclip-tiny");
    let (sam2, sam2_config) = (
        fixture("sam2/sam2.1-tiny-small.pt"),
        fixture("sam2/sam2.1-tiny-small.config.json"),
    );
    let image = fixture("dicom/ct-window.png");
    let head = fixture("heads/brain-mri-sam2-overlay-linear-probe.mfh");
    // Earlier results in the output folder, which a failed run must not touch.
    let earlier = [
        "mask.png",
        "mask.overlay.png",
        "head.mfh",
        "report/report.md",
        "report/runs.jsonl",
    ];
    let reset_outputs = || {
        let _ = std::fs::remove_dir_all(&outputs);
        for name in earlier {
            let path = outputs.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("earlier {name}")).unwrap();
        }
    };
    let out = |name: &str| outputs.join(name).display().to_string();
    let (mask, head_out, report) = (out("mask.png"), out("head.mfh"), out("report"));
    let mut runs = 0;
    let mut failures = Vec::new();
    for entry in index.iter().filter(|entry| entry.case != "valid") {
        let file = inputs.join(&entry.name);
        std::fs::write(&file, entry.bytes(&corpus)).unwrap();
        let file = file.display().to_string();
        let commands: Vec<Vec<&str>> = match own_loader(&entry.format) {
            "image" => vec![
                vec![
                    "classify",
                    "--model",
                    &clip,
                    "--classes",
                    "a,b",
                    "--json",
                    &file,
                ],
                vec![
                    "segment",
                    "--model",
                    &sam2,
                    "--config",
                    &sam2_config,
                    "--point",
                    "4,4",
                    "--out",
                    &mask,
                    &file,
                ],
            ],
            "head" => vec![vec!["predict", "--head", &file, "--model", &clip, &image]],
            "data set" => vec![
                vec![
                    "train",
                    "--data",
                    &file,
                    "--model",
                    &clip,
                    "--head",
                    "linear-probe",
                    "--out",
                    &head_out,
                    "--no-cache",
                ],
                vec!["eval", "--data", &file, "--model", &clip, "--out", &report],
            ],
            "sam2 burnpack" | "sam2 config" => vec![vec![
                "segment", "--model", &file, "--point", "4,4", "--out", &mask, &image,
            ]],
            "checkpoint file" => vec![vec![
                "predict", "--head", &head, "--model", &clip, "--sam2", &file, &image,
            ]],
            _ => vec![],
        };
        for args in commands {
            reset_outputs();
            runs += 1;
            let output = medfocus(&args);
            let said = common::cli::text(&output.stderr);
            let what = format!("{} ({}): {}", entry.name, entry.case, args[0]);
            if output.status.success() {
                failures.push(format!("{what}: succeeded"));
            } else if said.contains("panicked") || said.trim().is_empty() {
                failures.push(format!("{what}: no clear error: {said}"));
            }
            for name in earlier {
                let now = std::fs::read_to_string(outputs.join(name)).unwrap_or_default();
                if now != format!("earlier {name}") {
                    failures.push(format!("{what}: {name} was touched"));
                }
            }
            let written = walk(&outputs).len();
            if written != earlier.len() {
                failures.push(format!("{what}: {written} files in the output folder"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{runs} command runs on broken inputs");
    assert!(runs > 100, "{runs} runs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
