//! `medfocus inspect`: decode images (files, or a folder with one sub-folder per class) and
//! describe them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use medfocus::dataset::ClassFolders;
use medfocus::imaging;

use super::CliResult;

/// A bad file is reported and the rest still inspected.
pub fn run(out: &mut impl Write, paths: &[PathBuf]) -> CliResult {
    let mut failures = 0usize;
    let mut describe = |out: &mut dyn Write, path: &Path, label: &str| -> io::Result<()> {
        let result = std::fs::read(path)
            .map_err(|error| error.to_string())
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
        if path.is_dir() {
            let set = ClassFolders::open(path)?;
            for (class, count) in set.classes.iter().zip(set.counts()) {
                writeln!(out, "class {class}: {count} images")?;
            }
            for image in &set.images {
                describe(
                    out,
                    &image.path,
                    &format!(" [{}]", set.classes[image.class_index]),
                )?;
            }
        } else {
            describe(out, path, "")?;
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
