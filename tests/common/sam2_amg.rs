//! The automatic-mask parity check the native and the browser suites both run: every run of
//! Meta's `SAM2AutomaticMaskGenerator` recorded in `tests/fixtures/sam2/index.json` (`amg`:
//! its settings and, per kept mask, the grid point, predicted IoU, stability, area and box).

use medfocus::sam2::automatic_mask_generator::{AutoMask, GeneratorSettings};
use serde_json::Value;

/// The recorded runs (`index.json`'s `amg`), as the native suite reads the file and the browser
/// one embeds it.
pub fn runs(index: &Value) -> &[Value] {
    index["amg"]["runs"]
        .as_array()
        .expect("index.json: amg.runs")
}

/// A recorded run's generator settings.
pub fn settings(run: &Value) -> GeneratorSettings {
    let s = &run["settings"];
    let number = |key: &str| {
        s[key]
            .as_f64()
            .unwrap_or_else(|| panic!("amg settings: {key}"))
    };
    GeneratorSettings {
        points_per_side: number("points_per_side") as usize,
        points_per_batch: number("points_per_batch") as usize,
        pred_iou_thresh: number("pred_iou_thresh") as f32,
        stability_score_thresh: number("stability_score_thresh") as f32,
        stability_score_offset: number("stability_score_offset") as f32,
        box_nms_thresh: number("box_nms_thresh") as f32,
        ..GeneratorSettings::default()
    }
}

/// Our masks are the reference's: as many, and for each of its masks one of ours from the same
/// grid point with the predicted IoU within `iou_tolerance`, the stability within 0.01, the area
/// within 1 % (of at least 100 pixels) and each box side within 2 pixels. Returns the largest
/// IoU difference, for the caller to report.
pub fn check(ours: &[AutoMask], run: &Value, iou_tolerance: f32) -> f32 {
    let reference = run["masks"].as_array().expect("amg run: masks");
    assert_eq!(
        ours.len(),
        reference.len(),
        "NMS {}: {} masks, the reference {}",
        run["settings"]["box_nms_thresh"],
        ours.len(),
        reference.len()
    );
    let mut largest = 0.0f32;
    for expected in reference {
        let point = expected["point"].as_array().unwrap();
        let point = [
            point[0].as_f64().unwrap() as f32,
            point[1].as_f64().unwrap() as f32,
        ];
        let iou = expected["predicted_iou"].as_f64().unwrap() as f32;
        let mine = ours
            .iter()
            .filter(|m| {
                (m.point[0] - point[0]).abs() < 1e-3 && (m.point[1] - point[1]).abs() < 1e-3
            })
            .min_by(|a, b| {
                (a.predicted_iou - iou)
                    .abs()
                    .total_cmp(&(b.predicted_iou - iou).abs())
            })
            .unwrap_or_else(|| panic!("no mask from point {point:?}"));
        let iou_diff = (mine.predicted_iou - iou).abs();
        largest = largest.max(iou_diff);
        assert!(
            iou_diff <= iou_tolerance,
            "{point:?}: IoU off by {iou_diff}"
        );
        let area = expected["area"].as_u64().unwrap() as f64;
        assert!(
            (mine.area as f64 - area).abs() <= 0.01 * area.max(100.0),
            "{point:?}: area {} vs {area}",
            mine.area
        );
        let stability = expected["stability_score"].as_f64().unwrap() as f32;
        assert!(
            (mine.stability_score - stability).abs() <= 0.01,
            "{point:?}: stability {} vs {stability}",
            mine.stability_score
        );
        let bbox: Vec<u64> = expected["bbox_xywh"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as u64)
            .collect();
        let ours_box = mine.bbox_xywh();
        assert_eq!(bbox.len(), 4, "{point:?}: reference box {bbox:?}");
        for (a, b) in ours_box.iter().zip(&bbox) {
            assert!(
                (*a as i64 - *b as i64).abs() <= 2,
                "{point:?}: box {ours_box:?} vs {bbox:?}"
            );
        }
    }
    largest
}
