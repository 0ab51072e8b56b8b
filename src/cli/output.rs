//! Printing predictions: ranked classes per image, or one JSON object per line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use medfocus::explain::ExplainRequest;
use medfocus::explain::files::{WrittenExplanation, explain_files};
use medfocus::pipeline::files::classify_files;
use medfocus::pipeline::{MaskSource, Pipeline, Prediction, Region};

use super::args::{CliResult, ExplainArgs};

/// One image's answer: the prediction and, with `--explain`, its explanation.
pub(crate) struct Answer {
    pub(crate) prediction: Prediction,
    pub(crate) explanation: Option<WrittenExplanation>,
}

/// Each image classified through `pipeline` (explained too, with `--explain`); per image the
/// answer or why not.
pub(crate) fn answer_files(
    pipeline: &Pipeline,
    images: &[PathBuf],
    source: &MaskSource,
    explain: &ExplainArgs,
) -> Result<Vec<Result<Answer, String>>, Box<dyn std::error::Error>> {
    let request: Option<(ExplainRequest, &std::path::Path)> =
        explain.request(pipeline.classifier)?;
    Ok(match request {
        None => classify_files(pipeline, images, source)
            .into_iter()
            .map(|result| {
                result
                    .map(|prediction| Answer {
                        prediction,
                        explanation: None,
                    })
                    .map_err(|error| error.to_string())
            })
            .collect(),
        Some((request, dir)) => explain_files(
            pipeline,
            images,
            source,
            &request,
            dir,
            explain.explain_opacity,
        )
        .into_iter()
        .map(|result| {
            result
                .map(|written| Answer {
                    prediction: written.explained.prediction.clone(),
                    explanation: Some(written),
                })
                .map_err(|error| error.to_string())
        })
        .collect(),
    })
}

/// Each image's classes ranked by probability (or one JSON object per image); failures go to
/// stderr, and make the exit status a failure, after the other images are done.
pub(crate) fn print_results<E: std::fmt::Display>(
    out: &mut impl Write,
    classes: &[String],
    images: &[PathBuf],
    results: Vec<Result<Answer, E>>,
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
        if let Ok(Answer {
            prediction:
                Prediction {
                    region:
                        Some(Region {
                            warning: Some(warning),
                            ..
                        }),
                    ..
                },
            ..
        }) = &result
        {
            eprintln!("{}: {warning}", path.display());
        }
        match result {
            Ok(Answer {
                prediction,
                explanation,
            }) if json => {
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
                if let Some(written) = &explanation {
                    let explanation = &written.explained.explanation;
                    line["explanation"] = serde_json::json!({
                        "method": explanation.method.name(),
                        "class": classes[explanation.class],
                        "grid": explanation.grid,
                        "patch_map": explanation.patch_map,
                        "heatmap": written.heatmap.display().to_string(),
                        "blended": written.blended.display().to_string(),
                    });
                }
                writeln!(out, "{line}")?;
            }
            Ok(Answer {
                prediction,
                explanation,
            }) => {
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
                if let Some(written) = &explanation {
                    let explanation = &written.explained.explanation;
                    writeln!(
                        out,
                        "  where it looked ({} for {}): {}, {}",
                        explanation.method.name(),
                        classes[explanation.class],
                        written.heatmap.display(),
                        written.blended.display()
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
