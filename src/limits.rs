//! The bounds on sizes a user controls, in one place, each with its reason. Every entry point (CLI
//! flags, the wasm exports, the file parsers, head files' recorded settings) is checked against
//! these before any work or allocation sized by them starts, and a value past one is an error
//! naming the value and the limit: in wasm a panic or an allocation failure aborts the whole
//! module, and natively it ends a run that may have hours of work behind it.
//!
//! Not here: how work is sliced to fit a device (attention logits and full-size mask logits in
//! pieces under WebGPU's 128 MiB buffer limit, `sam2::sam2_utils`, `sam2::automatic_mask_generator`);
//! those are not bounds on input but on the pieces the work is cut into.

// ---- Images ----------------------------------------------------------------------------------

/// The largest side of an image decoded; whole-slide pathology images need tiling, which we do
/// not do.
pub const MAX_SIDE: u32 = 16_384;

/// The most pixels an image may have after decoding: 32 Mi pixels (e.g. 5792²). The largest
/// medical detectors are mammography panels of about 28 megapixels (5928 × 4728); chest and
/// general radiography panels are 9–12 megapixels. The pipeline keeps several full-size copies
/// while it works (8-bit RGB, the f32 mask, a blur's f32 planes, SAM 2's masks at image size):
/// about 30 bytes a pixel, ≈ 1 GB at this limit, a quarter of a wasm module's whole heap.
/// Without it an 8192² grey PNG (64 MB decoded) passed decoding and the blur then needed 2.4 GB.
pub const MAX_IMAGE_PIXELS: u64 = 32 << 20;

/// The largest decoded buffer (the wasm heap is 4 GiB at most, shared with the models).
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

// ---- Model files -----------------------------------------------------------------------------

/// The largest SafeTensors header read: the format's own reference parser refuses more than
/// 100 MB, and a header that long describes millions of tensors, not a model.
pub const MAX_SAFETENSORS_HEADER_BYTES: u64 = 100_000_000;

/// Longer names are not model files (and would only bloat messages).
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// What a model built from a checkpoint may allocate, in values: twice what the checkpoint
/// holds, plus 16 Mi. A model takes each of its tensors from a distinct tensor of its
/// checkpoint, so a config that describes the checkpoint asks for at most what it holds; a
/// checkpoint missing some tensors gets zeros for them and every problem is listed, as long as
/// the zeros stay within this. Past it the config describes another, larger model (or a hostile
/// one: a width of 10⁶ in a CLIP config asks for terabytes), and building stops before the
/// allocation — memory is bounded by the file already read, never by the config.
pub fn max_model_values(checkpoint_values: u64) -> u64 {
    checkpoint_values.saturating_mul(2).saturating_add(16 << 20)
}

// ---- Data sets -------------------------------------------------------------------------------

/// The largest split file or CSV read (a list of paths; real ones are a few MB).
pub const MAX_LIST_BYTES: u64 = 256 << 20;

/// More classes than this is not a classification set a head could learn from a few shots.
pub const MAX_DATASET_CLASSES: usize = 10_000;

/// The largest `.npy` array read (MedMNIST+'s biggest 224-pixel 2D sets are under 3 GB).
pub const MAX_NPY_ARRAY_BYTES: u64 = 4 << 30;

/// The largest `.npy` header (NumPy writes well under 200 bytes).
pub const MAX_NPY_HEADER_BYTES: usize = 64 << 10;

// ---- Heads and their training ----------------------------------------------------------------

/// More classes than any few-shot benchmark has (MedMNIST's largest has 11); the bound keeps a
/// hostile class list from sizing the text prior.
pub const MAX_HEAD_CLASSES: usize = 256;

/// One array of a head's weights given as NumPy (`heads::arrays`): the largest federable tensor
/// is a linear probe's `[classes, dim]`, 256 × 1,280 float32 = 1.25 MiB even for ViT-bigG's
/// 1,280-wide embeddings; 64 MiB leaves room and refuses an archive that would make us allocate
/// gigabytes.
pub const MAX_HEAD_ARRAY_BYTES: u64 = 64 << 20;

/// Class names are prompt words, not documents.
pub const MAX_CLASS_NAME_CHARS: usize = 200;

/// Support images per set: far beyond "few-shot", and only embeddings are kept (ViT-B/16:
/// 2 KiB each).
pub const MAX_SUPPORT_IMAGES: usize = 20_000;

/// The largest region stored in the region cache (SAM 2 masks are at image size; a region is
/// at most an image's [`MAX_IMAGE_PIXELS`], and the cache reads older entries up to twice that).
pub const MAX_REGION_PIXELS: usize = 64 << 20;

// ---- Focus and segmentation settings ---------------------------------------------------------

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
