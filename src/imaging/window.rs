//! Samples of any depth (16-bit, float, DICOM's stored values) to the 8 bits every model reads,
//! through a linear window: the decoders' and the preprocessing's shared rule.

/// Samples → 8 bits through the linear window [lowest, highest] of the finite values present
/// (one window for all channels, so colours keep their balance); non-finite samples become 0,
/// a constant image 0. In f64, so that DICOM's values (`imaging::dicom`) round as pydicom's do;
/// 16-bit and f32 samples convert exactly.
pub fn window_min_max(samples: impl Iterator<Item = f64> + Clone) -> Vec<u8> {
    let (low, high) = samples
        .clone()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
            (low.min(v), high.max(v))
        });
    window(samples, low, high)
}

/// Samples → 8 bits through the linear window [`low`, `high`]: `low` and below → 0, `high` and
/// above → 255.
pub fn window(samples: impl Iterator<Item = f64>, low: f64, high: f64) -> Vec<u8> {
    let span = high - low;
    samples
        .map(|v| {
            if !v.is_finite() || !(span > 0.0) {
                return 0;
            }
            ((v - low) / span * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}
