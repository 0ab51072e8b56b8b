//! The bounds on sizes a user controls, in one place, each with its reason. Every entry point (CLI
//! flags, the wasm exports, head files' recorded settings) is checked against these before any
//! work or allocation sized by them starts, and a value past one is an error naming the value
//! and the limit: in wasm a panic or an allocation failure aborts the whole module.
//!
//! Issue 16 grows this list (image pixels after decode, model sizes from configs, file sizes per
//! format); the limits that already lived beside their parsers stay there for now:
//! `imaging::{MAX_SIDE, MAX_DECODED_BYTES}`, `weights::MAX_SAFETENSORS_HEADER_BYTES`,
//! `dataset::set::{MAX_LIST_BYTES, MAX_CLASSES}`, `dataset::npz::MAX_ARRAY_BYTES`.

/// The largest blur σ, in image pixels. The blur's kernel has 2·⌈3σ⌉+1 taps per pass, so its
/// work grows with σ (σ = 10⁴ would take hours on a phone's CPU, σ = 10³⁰ overflows the kernel's
/// length); at 64 px the outside of a 1024-px image is already a wash of colour at CLIP's 224-px
/// input, so a larger σ shows CLIP nothing new.
pub const MAX_BLUR_SIGMA: f32 = 64.0;

/// The largest crop margin, as a multiple of the region's size on each side. At 10 the crop
/// keeps the whole image for any region of at least a twenty-first of it; beyond, the margin only
/// overflows the arithmetic that grows the box.
pub const MAX_CROP_MARGIN: f32 = 10.0;

/// The largest automatic-mask grid side: 128² = 16,384 point prompts, four times Meta's densest
/// setting (64); the grid is allocated and decoded in full, so the side bounds both.
pub const MAX_POINTS_PER_SIDE: usize = 128;

/// The most point prompts decoded at once: each holds three low-resolution masks (3 × 256² f32,
/// 768 KiB) through the decoder, so 1,024 prompts are ≈ 0.8 GB on the device.
pub const MAX_POINTS_PER_BATCH: usize = 1024;

/// `value` if it lies in `[low, high]` (and is a number), else the message naming the value, what
/// it is and the bounds.
pub fn within(what: &str, value: f32, low: f32, high: f32) -> Result<f32, String> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{what} {value} is outside [{low}, {high}]"))
    }
}

/// `value` if it lies in `1..=high`, else the message naming it and the limit.
pub fn count_within(what: &str, value: usize, high: usize) -> Result<usize, String> {
    if (1..=high).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{what} {value} is outside 1 to {high}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_value_and_the_limit() {
        assert_eq!(within("blur sigma", 8.0, 0.0, MAX_BLUR_SIGMA), Ok(8.0));
        assert_eq!(
            within("blur sigma", 1e30, 0.0, MAX_BLUR_SIGMA).unwrap_err(),
            "blur sigma 1000000000000000000000000000000 is outside [0, 64]"
        );
        assert!(within("x", f32::NAN, 0.0, 1.0).is_err());
        assert!(within("x", f32::INFINITY, 0.0, f32::MAX).is_err());
        assert_eq!(count_within("grid", 32, MAX_POINTS_PER_SIDE), Ok(32));
        assert_eq!(
            count_within("grid", 0, 4).unwrap_err(),
            "grid 0 is outside 1 to 4"
        );
        assert!(count_within("grid", usize::MAX, MAX_POINTS_PER_SIDE).is_err());
    }
}
