//! The report's pictures (plotters, drawn into memory and written as PNG): accuracy against the
//! protocol points per focus × head with error bars over seeds, and the confusion matrices at
//! the largest protocol point. The same runs as `report.md`; nothing here computes a metric.
//!
//! Text is set in DejaVu Sans, embedded (`dejavu` crate) and registered with plotters'
//! `ab_glyph` renderer, so a machine without fonts (a CI runner, a container) draws the same
//! labels; plotters' default `ttf` feature would look fonts up through fontconfig instead.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::metrics::mean_std;
use super::records::RunRecord;
use super::summary::{ReportContext, summed_confusions};

/// Width of the accuracy plot, pixels; its height grows with the legend.
const WIDTH: u32 = 1100;
const PLOT_HEIGHT: u32 = 560;
const LEGEND_ROW: u32 = 22;
/// One confusion matrix's panel, pixels.
const PANEL: u32 = 300;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The font is valid TrueType; a failure here would be a broken `dejavu` crate, and then
        // plots come out without text rather than not at all.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// An RGB picture, encoded as PNG.
fn png(width: u32, height: u32, pixels: Vec<u8>) -> Result<Vec<u8>, String> {
    let image = image::RgbImage::from_raw(width, height, pixels)
        .ok_or("the plot's buffer does not match its size")?;
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|error| error.to_string())?;
    Ok(bytes)
}

fn drawing_error(error: impl std::fmt::Display) -> String {
    format!("drawing the plot: {error}")
}

/// One line of the accuracy plot: a focus × head over the protocol points.
struct Series {
    label: String,
    /// (column index, mean, std, seeds) where the cell has runs.
    points: Vec<(usize, f64, f64, usize)>,
}

fn series(runs: &[RunRecord], context: &ReportContext, columns: &[String]) -> Vec<Series> {
    let mut all = Vec::new();
    for focus in &context.focuses {
        for head in &context.heads {
            let points: Vec<(usize, f64, f64, usize)> = columns
                .iter()
                .enumerate()
                .filter_map(|(index, column)| {
                    let values: Vec<f64> = runs
                        .iter()
                        .filter(|run| {
                            run.focus == *focus && run.head == *head && run.protocol == *column
                        })
                        .map(|run| run.metrics.accuracy * 100.0)
                        .collect();
                    mean_std(&values).map(|(mean, std)| (index, mean, std, values.len()))
                })
                .collect();
            if !points.is_empty() {
                all.push(Series {
                    label: format!("{focus} · {head}"),
                    points,
                });
            }
        }
    }
    all
}

/// `accuracy.png`: accuracy (%) against the protocol points, one coloured line per focus ×
/// head, error bars = ± one standard deviation over seeds. `None` without runs.
///
/// Not split: plotters' calls for one chart in drawing order (axes, lines, error bars, legend).
pub fn accuracy_plot(
    runs: &[RunRecord],
    context: &ReportContext,
    columns: &[String],
) -> Result<Option<Vec<u8>>, String> {
    let lines = series(runs, context, columns);
    if lines.is_empty() || columns.is_empty() {
        return Ok(None);
    }
    register_font();
    let legend_rows = lines.len().div_ceil(2) as u32;
    let height = PLOT_HEIGHT + 30 + legend_rows * LEGEND_ROW;
    let mut pixels = vec![255u8; (WIDTH * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        let (plot, legend) = root.split_vertically(PLOT_HEIGHT);
        let low = lines
            .iter()
            .flat_map(|line| line.points.iter().map(|&(_, mean, std, _)| mean - std))
            .fold(f64::INFINITY, f64::min);
        let high = lines
            .iter()
            .flat_map(|line| line.points.iter().map(|&(_, mean, std, _)| mean + std))
            .fold(f64::NEG_INFINITY, f64::max);
        // Whole tens around the data, inside 0..100: small differences stay visible.
        let y_low = ((low - 2.0) / 10.0).floor().max(0.0) * 10.0;
        let y_high = (((high + 2.0) / 10.0).ceil() * 10.0).clamp(y_low + 10.0, 100.0);
        let seeds = lines
            .iter()
            .flat_map(|line| line.points.iter().map(|point| point.3))
            .max()
            .unwrap_or(1);
        let caption = format!(
            "Accuracy on the test split ({}; mean ± std over {seeds} seed{})",
            context.data,
            if seeds == 1 { "" } else { "s" }
        );
        let last = columns.len() as f64 - 0.5;
        let mut chart = ChartBuilder::on(&plot)
            .caption(caption, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..last, y_low..y_high)
            .map_err(drawing_error)?;
        let labels = columns.to_vec();
        chart
            .configure_mesh()
            .x_labels(columns.len() * 2 + 1)
            .x_label_formatter(&|x: &f64| {
                let index = x.round();
                if (x - index).abs() < 1e-6 && index >= 0.0 {
                    labels.get(index as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("training data per class (protocol point)")
            .y_desc("accuracy, %")
            .y_label_formatter(&|y: &f64| format!("{y:.0}"))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(238, 238, 238))
            .max_light_lines(4)
            .draw()
            .map_err(drawing_error)?;
        // Lines at one point would hide each other's error bars: spread them over a quarter of
        // the gap between points.
        let spread = 0.25;
        for (index, line) in lines.iter().enumerate() {
            let colour = Palette99::pick(index).to_rgba();
            let offset = if lines.len() > 1 {
                (index as f64 / (lines.len() - 1) as f64 - 0.5) * spread
            } else {
                0.0
            };
            let at = |column: usize| column as f64 + offset;
            chart
                .draw_series(LineSeries::new(
                    line.points
                        .iter()
                        .map(|&(column, mean, _, _)| (at(column), mean)),
                    colour.stroke_width(2),
                ))
                .map_err(drawing_error)?;
            chart
                .draw_series(line.points.iter().map(|&(column, mean, std, _)| {
                    ErrorBar::new_vertical(
                        at(column),
                        mean - std,
                        mean,
                        mean + std,
                        colour.filled(),
                        8,
                    )
                }))
                .map_err(drawing_error)?;
            chart
                .draw_series(line.points.iter().map(|&(column, mean, _, _)| {
                    Circle::new((at(column), mean), 4, colour.filled())
                }))
                .map_err(drawing_error)?;
        }
        // The legend below the plot, two columns: a swatch and "focus · head".
        let column_width = (WIDTH as i32 - 80) / 2;
        for (index, line) in lines.iter().enumerate() {
            let colour = Palette99::pick(index).to_rgba();
            let x = 60 + (index as i32 % 2) * column_width;
            let y = 10 + (index as i32 / 2) * LEGEND_ROW as i32;
            legend
                .draw(&Rectangle::new(
                    [(x, y + 4), (x + 24, y + 8)],
                    colour.filled(),
                ))
                .map_err(drawing_error)?;
            legend
                .draw(&Text::new(
                    line.label.clone(),
                    (x + 32, y - 2),
                    ("sans-serif", 15).into_font(),
                ))
                .map_err(drawing_error)?;
        }
        root.present().map_err(drawing_error)?;
    }
    png(WIDTH, height, pixels).map(Some)
}

/// `confusion.png`: the confusion matrix of every focus × head at the largest protocol point,
/// summed over seeds; a cell's shade is its share of the truth's row, its text the count.
pub fn confusion_plot(
    runs: &[RunRecord],
    context: &ReportContext,
    column: &str,
) -> Result<Option<Vec<u8>>, String> {
    let classes = context.classes.len();
    let matrices = summed_confusions(runs, context, column);
    if matrices.is_empty() || classes == 0 {
        return Ok(None);
    }
    register_font();
    let focuses: Vec<usize> = {
        let mut seen: Vec<usize> = matrices.keys().map(|&(f, _)| f).collect();
        seen.dedup();
        seen
    };
    let heads: Vec<usize> = {
        let mut seen: Vec<usize> = matrices.keys().map(|&(_, h)| h).collect();
        seen.sort_unstable();
        seen.dedup();
        seen
    };
    let title_height = 40;
    let (width, height) = (
        PANEL * heads.len() as u32,
        title_height + PANEL * focuses.len() as u32,
    );
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        let (title, grid) = root.split_vertically(title_height);
        title
            .draw(&Text::new(
                format!("Confusion matrices at {column} (rows: truth, columns: prediction; summed over seeds)"),
                (12, 10),
                ("sans-serif", 17).into_font(),
            ))
            .map_err(drawing_error)?;
        let panels = grid.split_evenly((focuses.len(), heads.len()));
        for (row, &f) in focuses.iter().enumerate() {
            for (col, &h) in heads.iter().enumerate() {
                let Some(matrix) = matrices.get(&(f, h)) else {
                    continue;
                };
                let panel = &panels[row * heads.len() + col];
                draw_matrix(
                    panel,
                    &format!("{} · {}", context.focuses[f], context.heads[h]),
                    &context.classes,
                    matrix,
                )?;
            }
        }
        root.present().map_err(drawing_error)?;
    }
    png(width, height, pixels).map(Some)
}

fn short(name: &str, limit: usize) -> String {
    if name.chars().count() <= limit {
        name.to_string()
    } else {
        name.chars().take(limit - 1).collect::<String>() + "…"
    }
}

fn draw_matrix(
    panel: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    classes: &[String],
    matrix: &[Vec<u64>],
) -> Result<(), String> {
    let k = classes.len() as i32;
    let (left, top, right, bottom) = (78, 30, 10, 50);
    let (width, height) = panel.dim_in_pixel();
    let cell = ((width as i32 - left - right).min(height as i32 - top - bottom) / k).max(4);
    let font = |size| ("sans-serif", size).into_font();
    panel
        .draw(&Text::new(short(title, 38), (8, 6), font(15)))
        .map_err(drawing_error)?;
    let label_size = if cell >= 40 { 12 } else { 10 };
    for (truth, row) in matrix.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (predicted, &count) in row.iter().enumerate() {
            let share = if total > 0 {
                count as f64 / total as f64
            } else {
                0.0
            };
            // White (none of the row) to a deep blue (all of it).
            let shade = |full: f64, empty: f64| (empty + (full - empty) * share).round() as u8;
            let colour = RGBColor(shade(31.0, 247.0), shade(90.0, 251.0), shade(170.0, 255.0));
            let (x, y) = (left + predicted as i32 * cell, top + truth as i32 * cell);
            panel
                .draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    colour.filled(),
                ))
                .map_err(drawing_error)?;
            panel
                .draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    RGBColor(200, 200, 200).stroke_width(1),
                ))
                .map_err(drawing_error)?;
            if cell >= 18 {
                let text_colour = if share > 0.5 { WHITE } else { BLACK };
                let text = count.to_string();
                let text_width = text.len() as i32 * label_size / 2 + 2;
                panel
                    .draw(&Text::new(
                        text,
                        (x + cell / 2 - text_width / 2, y + cell / 2 - label_size / 2),
                        font(label_size).color(&text_colour),
                    ))
                    .map_err(drawing_error)?;
            }
        }
    }
    let limit = (cell / 6).clamp(3, 10) as usize;
    for (index, class) in classes.iter().enumerate() {
        let y = top + index as i32 * cell + cell / 2 - 6;
        panel
            .draw(&Text::new(short(class, 10), (4, y), font(11)))
            .map_err(drawing_error)?;
        let x = left + index as i32 * cell + 2;
        panel
            .draw(&Text::new(
                short(class, limit),
                (x, top + k * cell + 4),
                font(11),
            ))
            .map_err(drawing_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Metrics;

    fn run(focus: &str, head: &str, protocol: &str, seed: u64, accuracy: f64) -> RunRecord {
        RunRecord {
            run: format!("{focus}-{head}-{protocol}-{seed}"),
            manifest: String::new(),
            manifest_sha256: String::new(),
            protocol: protocol.into(),
            seed,
            head: head.into(),
            focus: focus.into(),
            masks: "none".into(),
            model: "tiny".into(),
            train_images: 4,
            val_images: 0,
            test_images: 10,
            metrics: Metrics {
                accuracy,
                balanced_accuracy: accuracy,
                macro_f1: accuracy,
                kappa: 0.0,
                auroc: None,
                log_loss: 0.5,
                ece: 0.1,
                confusion: vec![vec![4, 1], vec![2, 3]],
            },
            training: serde_json::Value::Null,
            seconds: 0.1,
        }
    }

    fn context() -> ReportContext {
        ReportContext {
            data: "chest-xray".into(),
            classes: vec!["NORMAL".into(), "PNEUMONIA".into()],
            focuses: vec!["none".into(), "overlay".into()],
            heads: vec!["linear-probe".into()],
            ..ReportContext::default()
        }
    }

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).unwrap().to_rgb8()
    }

    /// Pixels that are neither white nor grey: drawn in a colour.
    fn coloured(image: &image::RgbImage) -> usize {
        image
            .pixels()
            .filter(|p| p[0].abs_diff(p[1]) > 40 || p[1].abs_diff(p[2]) > 40)
            .count()
    }

    #[test]
    fn accuracy_plot_draws_every_series_with_labels() {
        let columns = vec!["5%".to_string(), "10%".to_string()];
        let mut runs = Vec::new();
        for seed in 1..=3 {
            for (column, base) in [("5%", 0.6), ("10%", 0.7)] {
                runs.push(run(
                    "none",
                    "linear-probe",
                    column,
                    seed,
                    base + seed as f64 * 0.02,
                ));
                runs.push(run("overlay", "linear-probe", column, seed, base + 0.1));
            }
        }
        let png = accuracy_plot(&runs, &context(), &columns).unwrap().unwrap();
        let image = decode(&png);
        assert_eq!(image.width(), WIDTH);
        assert_eq!(image.height(), PLOT_HEIGHT + 30 + LEGEND_ROW);
        assert!(coloured(&image) > 500, "the lines and error bars are drawn");
        // The legend's text (below the plot): dark pixels where the labels are, which only an
        // embedded font can give on a machine without fonts.
        let legend_dark = (PLOT_HEIGHT..image.height())
            .flat_map(|y| (0..image.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| image.get_pixel(x, y)[0] < 100 && x > 80)
            .count();
        assert!(
            legend_dark > 50,
            "legend text drawn: {legend_dark} dark pixels"
        );
        assert!(accuracy_plot(&[], &context(), &columns).unwrap().is_none());
    }

    #[test]
    fn confusion_plot_has_a_panel_per_focus_and_head() {
        let runs = vec![
            run("none", "linear-probe", "10%", 1, 0.7),
            run("overlay", "linear-probe", "10%", 1, 0.8),
            run("overlay", "linear-probe", "5%", 1, 0.8),
        ];
        let png = confusion_plot(&runs, &context(), "10%").unwrap().unwrap();
        let image = decode(&png);
        assert_eq!((image.width(), image.height()), (PANEL, 40 + 2 * PANEL));
        assert!(coloured(&image) > 1000, "shaded cells");
        assert!(confusion_plot(&runs, &context(), "50%").unwrap().is_none());
    }
}
