//! `medfocus inspect`: decode images and describe them — single files, or a data set (a folder
//! with one sub-folder per class, optionally inside split folders; a split file; a CSV; a
//! MedMNIST archive) with its classes, counts per split, file formats and the files it leaves
//! out.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use medfocus::dataset::Dataset;
use medfocus::imaging;

use super::args::CliResult;

/// Whether `path` names a data set rather than one image.
fn is_data_set(path: &Path) -> bool {
    path.is_dir()
        || path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| {
                ["json", "csv", "npz"]
                    .iter()
                    .any(|list| ext.eq_ignore_ascii_case(list))
            })
}

/// A bad file is reported and the rest still inspected.
pub fn run(out: &mut impl Write, paths: &[PathBuf]) -> CliResult {
    let mut failures = 0usize;
    let mut describe = |out: &mut dyn Write,
                        path: &Path,
                        bytes: Result<Vec<u8>, String>,
                        label: &str|
     -> io::Result<()> {
        let result = bytes
            .and_then(|bytes| imaging::decode_image(&bytes).map_err(|error| error.to_string()));
        match result {
            Ok(image) => writeln!(out, "{}{label}: {}", path.display(), image.summary()),
            Err(error) => {
                failures += 1;
                eprintln!("{}{label}: error: {error}", path.display());
                Ok(())
            }
        }
    };
    for path in paths {
        if !is_data_set(path) {
            describe(
                out,
                path,
                std::fs::read(path).map_err(|e| e.to_string()),
                "",
            )?;
            continue;
        }
        let set = Dataset::open(path, None)?;
        writeln!(out, "{}: {}", set.root.display(), set.layout.describe())?;
        let counts = set.counts();
        for (class_index, class) in set.classes.iter().enumerate() {
            let parts: Vec<String> = counts
                .iter()
                .map(|(split, per_class)| match split {
                    Some(split) => format!("{} {}", split.name(), per_class[class_index]),
                    None => per_class[class_index].to_string(),
                })
                .collect();
            writeln!(out, "class {class}: {} images", parts.join(", "))?;
        }
        let mut formats: BTreeMap<String, usize> = BTreeMap::new();
        for sample in &set.samples {
            *formats
                .entry(medfocus::dataset::format_label(&sample.path))
                .or_default() += 1;
        }
        let formats: Vec<String> = formats
            .iter()
            .map(|(extension, count)| format!("{extension} {count}"))
            .collect();
        writeln!(out, "formats: {}", formats.join(", "))?;
        if set.masked() > 0 {
            writeln!(out, "ground-truth masks: for {} images", set.masked())?;
        }
        for sample in &set.samples {
            let split = sample
                .split
                .map(|split| format!("{} ", split.name()))
                .unwrap_or_default();
            describe(
                out,
                &sample.path,
                set.read(sample),
                &format!(" [{split}{}]", set.classes[sample.class_index]),
            )?;
        }
        if !set.skipped.is_empty() {
            writeln!(out, "left out: {} files", set.skipped.len())?;
            for skipped in &set.skipped {
                writeln!(out, "  {skipped}")?;
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
