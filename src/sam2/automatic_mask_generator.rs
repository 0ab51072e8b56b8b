//! `sam2/automatic_mask_generator.py` for one crop (the whole image): a grid of single-point
//! prompts in batches, filtered by predicted IoU and stability score, binarised, de-duplicated
//! by box NMS; plus the rule that picks *the* mask to classify with.
//!
//! Everything that orders or filters runs on small vectors read back from the device (scores,
//! counts), never with tensor sort/argsort: those read synchronously and panic in the browser.

use burn::tensor::{Int, Tensor, TensorData};

use super::amg::{MaskRuns, MaskRunsBuilder};
use super::model::Sam2Error;
use super::predictor::{
    BinaryMask, EmbeddedImage, Prompt, Sam2Predictor, read_floats, read_inside,
};
use super::transforms::{MAX_FULL_SIZE_BYTES, row_bands, upscale_columns, upscale_rows};
use crate::limits::{MAX_POINTS_PER_BATCH, MAX_POINTS_PER_SIDE, count_within, within};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeneratorSettings {
    /// The grid has `points_per_side²` points.
    pub points_per_side: usize,
    /// Points decoded together (memory grows with it: 3 full-size masks per point).
    pub points_per_batch: usize,
    pub pred_iou_thresh: f32,
    pub stability_score_thresh: f32,
    pub stability_score_offset: f32,
    pub mask_threshold: f32,
    pub box_nms_thresh: f32,
    /// Masks with fewer pixels are dropped (the reference's OpenCV hole/island clean-up is
    /// not reproduced; this is the plain area filter).
    pub min_mask_region_area: usize,
}

impl Default for GeneratorSettings {
    /// Meta's defaults.
    fn default() -> Self {
        Self {
            points_per_side: 32,
            points_per_batch: 64,
            pred_iou_thresh: 0.8,
            stability_score_thresh: 0.95,
            stability_score_offset: 1.0,
            mask_threshold: 0.0,
            box_nms_thresh: 0.7,
            min_mask_region_area: 0,
        }
    }
}

impl GeneratorSettings {
    /// Refuses settings past [`crate::limits`] (the grid and the batch are allocated from
    /// them) or thresholds that are not numbers in their range. Settings arrive from the command
    /// line, the page and head files.
    pub fn check(&self) -> Result<(), String> {
        count_within("points per side", self.points_per_side, MAX_POINTS_PER_SIDE)?;
        count_within(
            "points per batch",
            self.points_per_batch,
            MAX_POINTS_PER_BATCH,
        )?;
        within(
            "the predicted-IoU threshold",
            self.pred_iou_thresh,
            0.0,
            1.0,
        )?;
        within(
            "the stability threshold",
            self.stability_score_thresh,
            0.0,
            1.0,
        )?;
        within("the box NMS threshold", self.box_nms_thresh, 0.0, 1.0)?;
        // Logit-space values: any number, but a number.
        within("the mask threshold", self.mask_threshold, -1e3, 1e3)?;
        within(
            "the stability offset",
            self.stability_score_offset,
            0.0,
            1e3,
        )?;
        Ok(())
    }
}

/// One generated mask, as the reference's record (the mask run-length coded, as there).
#[derive(Clone, Debug, PartialEq)]
pub struct AutoMask {
    pub width: usize,
    pub height: usize,
    pub runs: MaskRuns,
    /// `[x0, y0, x1, y1]`, inclusive pixel indices (`[0, 0, 0, 0]` when empty).
    pub box_xyxy: [usize; 4],
    pub area: usize,
    pub predicted_iou: f32,
    pub stability_score: f32,
    /// The grid point that produced it, in image pixels.
    pub point: [f32; 2],
}

impl AutoMask {
    /// `[x, y, w, h]` as the reference reports it (`w = x1 − x0`).
    pub fn bbox_xywh(&self) -> [usize; 4] {
        let [x0, y0, x1, y1] = self.box_xyxy;
        [x0, y0, x1 - x0, y1 - y0]
    }

    pub fn contains(&self, x: usize, y: usize) -> bool {
        self.runs.contains(x, y)
    }

    fn touches_every_border(&self) -> bool {
        let [x0, y0, x1, y1] = self.box_xyxy;
        self.area > 0 && x0 == 0 && y0 == 0 && x1 + 1 == self.width && y1 + 1 == self.height
    }

    pub fn to_binary(&self) -> BinaryMask {
        BinaryMask {
            width: self.width,
            height: self.height,
            pixels: self.runs.to_pixels(),
            predicted_iou: self.predicted_iou,
        }
    }
}

/// `build_point_grid`: cell centres of an `n × n` grid in [0, 1]², row by row.
pub fn point_grid(n: usize) -> Vec<[f32; 2]> {
    let offset = 1.0 / (2.0 * n as f64);
    let step = if n > 1 {
        (1.0 - 2.0 * offset) / (n - 1) as f64
    } else {
        0.0
    };
    let side: Vec<f64> = (0..n).map(|i| offset + step * i as f64).collect();
    side.iter()
        .flat_map(|&y| side.iter().map(move |&x| [x as f32, y as f32]))
        .collect()
}

/// torchvision's `box_iou` on `[x0, y0, x1, y1]` boxes (areas without the +1).
fn box_iou(a: [usize; 4], b: [usize; 4]) -> f32 {
    let area = |r: [usize; 4]| ((r[2] - r[0]) * (r[3] - r[1])) as f32;
    let width = (a[2].min(b[2]) as f32 - a[0].max(b[0]) as f32).max(0.0);
    let height = (a[3].min(b[3]) as f32 - a[1].max(b[1]) as f32).max(0.0);
    let intersection = width * height;
    let union = area(a) + area(b) - intersection;
    if union > 0.0 {
        intersection / union
    } else {
        0.0
    }
}

/// Greedy NMS by descending score: the indices kept, best first (torchvision's `nms`).
pub fn non_maximum_suppression(boxes: &[[usize; 4]], scores: &[f32], threshold: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut kept: Vec<usize> = Vec::new();
    for candidate in order {
        if kept
            .iter()
            .all(|&k| box_iou(boxes[k], boxes[candidate]) <= threshold)
        {
            kept.push(candidate);
        }
    }
    kept
}

/// All masks for an embedded image, best predicted IoU first.
pub async fn generate(
    predictor: &Sam2Predictor,
    image: &EmbeddedImage,
    settings: &GeneratorSettings,
) -> Result<Vec<AutoMask>, Sam2Error> {
    generate_reporting(predictor, image, settings, &|_, _| {}).await
}

/// [`generate`], telling `progress(points done, points in all)` before each batch of points
/// and at the end (a 32×32 grid on the browser's CPU backend takes minutes).
pub async fn generate_reporting(
    predictor: &Sam2Predictor,
    image: &EmbeddedImage,
    settings: &GeneratorSettings,
    progress: &dyn Fn(usize, usize),
) -> Result<Vec<AutoMask>, Sam2Error> {
    generate_in_bands(predictor, image, settings, progress, MAX_FULL_SIZE_BYTES).await
}

/// [`generate_reporting`] with the most bytes of full-size logits made at once given (tests make
/// it small, so that one mask takes many bands). Meta's `_generate_masks` in its order: batches
/// of points, the IoU filter, the stability filter ([`full_size_chunk`]), NMS.
pub async fn generate_in_bands(
    predictor: &Sam2Predictor,
    image: &EmbeddedImage,
    settings: &GeneratorSettings,
    progress: &dyn Fn(usize, usize),
    max_full_size_bytes: usize,
) -> Result<Vec<AutoMask>, Sam2Error> {
    settings.check().map_err(Sam2Error::Prompt)?;
    let (width, height) = (image.width, image.height);
    let points: Vec<[f32; 2]> = point_grid(settings.points_per_side)
        .into_iter()
        .map(|[x, y]| [x * width as f32, y * height as f32])
        .collect();
    let threshold = settings.mask_threshold;
    let offset = settings.stability_score_offset;
    // Full-size logits are made a few masks and a band of rows at a time: a batch's three
    // masks per point at the image's size would not fit a browser's buffers (nor be kind to
    // memory natively). The columns are interpolated first, for the whole chunk, so a chunk is
    // bounded by that too (the low-resolution side can exceed a small image's height).
    let low_side = predictor.model.config.low_res_mask_size();
    let masks_per_chunk = (max_full_size_bytes / (width * height.max(low_side) * 4)).max(1);
    let mut found: Vec<AutoMask> = Vec::new();
    for (index, batch) in points.chunks(settings.points_per_batch).enumerate() {
        progress(index * settings.points_per_batch, points.len());
        let prompts: Vec<Prompt> = batch.iter().map(|&[x, y]| Prompt::point(x, y)).collect();
        let decoded = predictor.predict_low_res(image, &prompts, true)?;
        let [count, per_point, low_h, low_w] = decoded.masks.dims();
        let ious = read_floats(decoded.iou_predictions).await?;
        // The predicted-IoU filter first: only masks that pass it are upscaled.
        let candidates: Vec<usize> = (0..count * per_point)
            .filter(|&index| {
                settings.pred_iou_thresh <= 0.0 || ious[index] > settings.pred_iou_thresh
            })
            .collect();
        let low = decoded.masks.reshape([count * per_point, low_h, low_w]);
        for chunk in candidates.chunks(masks_per_chunk) {
            let indices: Vec<i32> = chunk.iter().map(|&index| index as i32).collect();
            let selection =
                Tensor::<1, Int>::from_data(TensorData::new(indices, [chunk.len()]), &low.device());
            let wide = upscale_columns(low.clone().select(0, selection), width);
            let masks =
                full_size_chunk(wide, height, threshold, offset, max_full_size_bytes).await?;
            for (&index, (builder, stability)) in chunk.iter().zip(masks) {
                // An empty mask has 0/0 = NaN stability, which fails the filter as in PyTorch.
                if settings.stability_score_thresh > 0.0
                    && (stability.is_nan() || stability < settings.stability_score_thresh)
                {
                    continue;
                }
                let (box_xyxy, area) = (builder.box_xyxy(), builder.area());
                if area < settings.min_mask_region_area {
                    continue;
                }
                found.push(AutoMask {
                    width,
                    height,
                    runs: builder.finish(),
                    box_xyxy,
                    area,
                    predicted_iou: ious[index],
                    stability_score: stability,
                    point: batch[index / per_point],
                });
            }
        }
    }
    progress(points.len(), points.len());
    let boxes: Vec<[usize; 4]> = found.iter().map(|mask| mask.box_xyxy).collect();
    let scores: Vec<f32> = found.iter().map(|mask| mask.predicted_iou).collect();
    let kept = non_maximum_suppression(&boxes, &scores, settings.box_nms_thresh);
    let mut slots: Vec<Option<AutoMask>> = found.into_iter().map(Some).collect();
    Ok(kept
        .into_iter()
        .filter_map(|index| slots[index].take())
        .collect())
}

/// A chunk of masks brought to the image's size band by band (`wide`: `[masks, low side,
/// width]`, the columns already interpolated): each mask run-length coded, with its stability
/// score (`stability_score`: the share of pixels above `threshold + offset` among those above
/// `threshold − offset`). The counts are summed over bands in f64: a band's f32 count is exact
/// (under 2²⁴ pixels), a whole large mask's would not be.
async fn full_size_chunk(
    wide: Tensor<3>,
    height: usize,
    threshold: f32,
    offset: f32,
    max_bytes: usize,
) -> Result<Vec<(MaskRunsBuilder, f32)>, Sam2Error> {
    let [count, _, width] = wide.dims();
    let mut intersections = vec![0.0f64; count];
    let mut unions = vec![0.0f64; count];
    let mut builders: Vec<MaskRunsBuilder> = (0..count)
        .map(|_| MaskRunsBuilder::new(width, height))
        .collect();
    for rows in row_bands(count, width, height, max_bytes) {
        let band = rows.len() * width;
        let full = upscale_rows(wide.clone(), height, rows).reshape([count, band]);
        let counts_above = |cut: f32| full.clone().greater_elem(cut).float().sum_dim(1);
        let above_high = read_floats(counts_above(threshold + offset)).await?;
        let above_low = read_floats(counts_above(threshold - offset)).await?;
        for slot in 0..count {
            intersections[slot] += f64::from(above_high[slot]);
            unions[slot] += f64::from(above_low[slot]);
        }
        let inside = read_inside(full, threshold).await?;
        for (builder, part) in builders.iter_mut().zip(inside.chunks(band)) {
            builder.push_rows(part);
        }
    }
    Ok(builders
        .into_iter()
        .zip(intersections.into_iter().zip(unions))
        .map(|(builder, (intersection, union))| (builder, (intersection / union) as f32))
        .collect())
}

/// How to pick the one mask that steers CLIP.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaskChoice {
    /// The largest mask that is neither (nearly) the whole image — more than
    /// `MAX_REGION_FRACTION` of it — nor background (a mask reaching all four borders: the
    /// dark surround of an MRI slice, the air around a chest film). Ties: higher predicted IoU.
    Largest,
    /// The mask under a pixel (a user's click) with the highest predicted IoU.
    At { x: usize, y: usize },
}

impl MaskChoice {
    /// The mask under a click when there is one, else the largest region.
    pub fn at_or_largest(point: Option<&[f32; 2]>) -> Self {
        match point {
            Some([x, y]) => Self::At {
                x: *x as usize,
                y: *y as usize,
            },
            None => Self::Largest,
        }
    }
}

/// A region covering more of the image than this is not a region of interest.
pub const MAX_REGION_FRACTION: f32 = 0.9;

/// The masks [`MaskChoice`] accepts, best first: for `Largest`, every mask that is neither
/// (nearly) the whole image nor background, largest first (ties: higher predicted IoU); for `At`,
/// every mask covering the point, highest predicted IoU first. The front ends show the runners-up
/// as the candidates a person can pick instead.
pub fn ranked_masks(masks: &[AutoMask], choice: MaskChoice) -> Vec<&AutoMask> {
    let mut ranked: Vec<&AutoMask> = match choice {
        MaskChoice::Largest => masks
            .iter()
            .filter(|mask| {
                let total = (mask.width * mask.height) as f32;
                mask.area > 0
                    && (mask.area as f32) <= MAX_REGION_FRACTION * total
                    && !mask.touches_every_border()
            })
            .collect(),
        MaskChoice::At { x, y } => masks.iter().filter(|mask| mask.contains(x, y)).collect(),
    };
    // Stable sort, best first: among equals the earlier (NMS order) mask stays ahead.
    ranked.sort_by(|a, b| match choice {
        MaskChoice::Largest => b
            .area
            .cmp(&a.area)
            .then(b.predicted_iou.total_cmp(&a.predicted_iou)),
        MaskChoice::At { .. } => b.predicted_iou.total_cmp(&a.predicted_iou),
    });
    ranked
}

/// The mask [`MaskChoice`] picks, if any qualifies: the first of [`ranked_masks`].
pub fn choose_mask(masks: &[AutoMask], choice: MaskChoice) -> Option<&AutoMask> {
    ranked_masks(masks, choice).into_iter().next()
}

/// The automatic generator followed by [`ranked_masks`]: the qualifying masks, best first (the
/// first is the region to classify with; at most `keep`), and how many masks the generator
/// found in all.
pub async fn find_region(
    predictor: &Sam2Predictor,
    image: &EmbeddedImage,
    settings: &GeneratorSettings,
    choice: MaskChoice,
    keep: usize,
    progress: &dyn Fn(usize, usize),
) -> Result<(Vec<BinaryMask>, usize), Sam2Error> {
    let masks = generate_reporting(predictor, image, settings, progress).await?;
    let ranked: Vec<BinaryMask> = ranked_masks(&masks, choice)
        .into_iter()
        .take(keep.max(1))
        .map(AutoMask::to_binary)
        .collect();
    if ranked.is_empty() {
        return Err(Sam2Error::Prompt(format!(
            "none of the {} automatic masks qualifies ({}): prompt with a point or a box, or try a denser grid of points",
            masks.len(),
            match choice {
                MaskChoice::Largest => "each is the whole image or background",
                MaskChoice::At { .. } => "none covers the point",
            }
        )));
    }
    Ok((ranked, masks.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16: the grid side was unbounded (`point_grid(n)` allocates n²) and thresholds could
    /// be anything from the page or a head file; both are refused before anything is allocated.
    #[test]
    fn settings_past_their_limits_are_refused_naming_the_limit() {
        let defaults = GeneratorSettings::default();
        assert_eq!(defaults.check(), Ok(()));
        let refused = |settings: GeneratorSettings, words: &str| {
            let message = settings.check().unwrap_err();
            assert!(message.contains(words), "{message}");
        };
        refused(
            GeneratorSettings {
                points_per_side: 1 << 20,
                ..defaults.clone()
            },
            "points per side 1048576 is outside 1 to 128",
        );
        refused(
            GeneratorSettings {
                points_per_side: 0,
                ..defaults.clone()
            },
            "points per side 0",
        );
        refused(
            GeneratorSettings {
                points_per_batch: usize::MAX,
                ..defaults.clone()
            },
            "points per batch",
        );
        refused(
            GeneratorSettings {
                pred_iou_thresh: f32::NAN,
                ..defaults.clone()
            },
            "predicted-IoU threshold",
        );
        refused(
            GeneratorSettings {
                stability_score_thresh: 2.0,
                ..defaults.clone()
            },
            "stability threshold 2 is outside [0, 1]",
        );
        assert_eq!(
            GeneratorSettings {
                points_per_side: crate::limits::MAX_POINTS_PER_SIDE,
                ..defaults
            }
            .check(),
            Ok(())
        );
    }

    fn mask(width: usize, height: usize, rect: [usize; 4], iou: f32) -> AutoMask {
        let mut pixels = vec![false; width * height];
        for y in rect[1]..=rect[3] {
            for x in rect[0]..=rect[2] {
                pixels[y * width + x] = true;
            }
        }
        let mut runs = MaskRunsBuilder::new(width, height);
        runs.push_rows(&pixels);
        AutoMask {
            width,
            height,
            box_xyxy: runs.box_xyxy(),
            area: runs.area(),
            runs: runs.finish(),
            predicted_iou: iou,
            stability_score: 1.0,
            point: [0.0, 0.0],
        }
    }

    #[test]
    fn grid_matches_build_point_grid() {
        let grid = point_grid(4);
        assert_eq!(grid.len(), 16);
        assert_eq!(grid[0], [0.125, 0.125]);
        assert_eq!(grid[1], [0.375, 0.125]);
        assert_eq!(grid[15], [0.875, 0.875]);
    }

    #[test]
    fn boxes_are_inclusive_and_empty_masks_get_zeros() {
        let m = mask(10, 8, [2, 3, 5, 6], 0.9);
        assert_eq!(m.box_xyxy, [2, 3, 5, 6]);
        assert_eq!(m.area, 16);
        assert_eq!(m.bbox_xywh(), [2, 3, 3, 3]);
        let empty = mask(3, 2, [0, 0, 0, 0], 0.5);
        assert_eq!(empty.to_binary().pixels.iter().filter(|&&p| p).count(), 1);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let boxes = [
            [0, 0, 10, 10],
            [1, 1, 10, 10],
            [20, 20, 30, 30],
            [0, 0, 10, 10],
        ];
        let scores = [0.5, 0.9, 0.7, 0.1];
        // Box 1 beats 0 and 3 (IoU 0.81 > 0.7); box 2 overlaps nothing.
        assert_eq!(non_maximum_suppression(&boxes, &scores, 0.7), vec![1, 2]);
        // With a threshold above every IoU all are kept, best first.
        assert_eq!(
            non_maximum_suppression(&boxes, &scores, 1.0),
            vec![1, 2, 0, 3]
        );
    }

    #[test]
    fn the_chosen_mask_is_the_largest_region_not_the_background() {
        let background = mask(20, 20, [0, 0, 19, 19], 0.99);
        let body = mask(20, 20, [2, 2, 17, 17], 0.8);
        let lesion = mask(20, 20, [5, 5, 8, 8], 0.95);
        let masks = vec![background, body.clone(), lesion.clone()];
        assert_eq!(choose_mask(&masks, MaskChoice::Largest), Some(&body));
        assert_eq!(
            choose_mask(&masks, MaskChoice::At { x: 6, y: 6 }),
            Some(&masks[0])
        );
        assert_eq!(
            choose_mask(&masks[2..], MaskChoice::At { x: 6, y: 6 }),
            Some(&lesion)
        );
        assert_eq!(choose_mask(&masks[..1], MaskChoice::Largest), None);
    }

    #[test]
    fn ranked_masks_offer_the_runners_up_best_first() {
        let background = mask(20, 20, [0, 0, 19, 19], 0.99);
        let body = mask(20, 20, [2, 2, 17, 17], 0.8);
        let lesion = mask(20, 20, [5, 5, 8, 8], 0.95);
        let spot = mask(20, 20, [6, 6, 7, 7], 0.97);
        let masks = vec![
            spot.clone(),
            background.clone(),
            lesion.clone(),
            body.clone(),
        ];
        // Largest: the background never, then by area.
        assert_eq!(
            ranked_masks(&masks, MaskChoice::Largest),
            vec![&body, &lesion, &spot]
        );
        // At a point: every mask covering it, by predicted IoU.
        assert_eq!(
            ranked_masks(&masks, MaskChoice::At { x: 6, y: 6 }),
            vec![&background, &spot, &lesion, &body]
        );
        assert!(ranked_masks(&masks, MaskChoice::At { x: 0, y: 19 }).len() == 1);
    }
}
