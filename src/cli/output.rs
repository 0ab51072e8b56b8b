//! Printing predictions: ranked classes per image, or one JSON object per line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use medfocus::pipeline::{Prediction, Region};

use super::args::CliResult;

/// Each image's classes ranked by probability (or one JSON object per image); failures go to
/// stderr, and make the exit status a failure, after the other images are done.
pub(crate) fn print_results<E: std::fmt::Display>(
    out: &mut impl Write,
    classes: &[String],
    images: &[PathBuf],
    results: Vec<Result<Prediction, E>>,
    json: bool,
) -> CliResult {
    let width = classes
        .iter()
        .map(|class| class.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut failures = 0usize;
    for (path, result) in images.iter().zip(results) {
        if let Ok(Prediction {
            region:
                Some(Region {
                    warning: Some(warning),
                    ..
                }),
            ..
        }) = &result
        {
            eprintln!("{}: {warning}", path.display());
        }
        match result {
            Ok(prediction) if json => {
                let mut line = serde_json::json!({
                    "image": path.display().to_string(),
                    "classes": classes,
                    "probabilities": prediction.probabilities,
                });
                // What the image was focused on, when the focus uses a region.
                if let Some(region) = &prediction.region {
                    line["region"] = serde_json::json!({
                        "origin": region.origin.name(),
                        "coverage": region.coverage,
                    });
                }
                writeln!(out, "{line}")?;
            }
            Ok(prediction) => {
                writeln!(out, "\n{}", path.display())?;
                if let Some(region) = &prediction.region {
                    writeln!(
                        out,
                        "  region: {}, {:.1} % of the image",
                        region.origin.name(),
                        region.coverage * 100.0
                    )?;
                }
                let mut ranked: Vec<(usize, f32)> =
                    prediction.probabilities.into_iter().enumerate().collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                for (rank, (class, probability)) in ranked.iter().enumerate() {
                    let marker = if rank == 0 { "→" } else { " " };
                    writeln!(
                        out,
                        "  {marker} {:<width$}  {:6.2} %",
                        classes[*class],
                        probability * 100.0
                    )?;
                }
            }
            Err(error) => {
                failures += 1;
                eprintln!("{}: error: {error}", path.display());
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
