//! How well a heat-map points at a ground-truth region (CheXlocalize, XBench): the share of the
//! map's energy inside the mask, and the pointing game (is the hottest pixel inside?).

use super::HeatMap;
use crate::focus::Mask;

/// A heat-map judged against a mask of the same image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Localisation {
    /// Σ heat inside the mask / Σ heat over the pixels the tower saw (0 for an all-zero map).
    pub energy_inside: f32,
    /// Whether the hottest seen pixel lies in the mask.
    pub pointing_hit: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the mask is {mask:?} pixels but the heat-map {heat:?}")]
pub struct SizeMismatch {
    pub mask: [usize; 2],
    pub heat: [usize; 2],
}

/// `heat` judged against `mask` (a pixel is inside where its weight is ≥ 0.5).
pub fn localisation(heat: &HeatMap, mask: &Mask) -> Result<Localisation, SizeMismatch> {
    if [mask.width, mask.height] != [heat.width, heat.height] {
        return Err(SizeMismatch {
            mask: [mask.width, mask.height],
            heat: [heat.width, heat.height],
        });
    }
    let (mut inside, mut total) = (0.0f64, 0.0f64);
    let mut hottest: Option<(f32, bool)> = None;
    for (&value, &weight) in heat.values.iter().zip(&mask.weights) {
        if value.is_nan() {
            continue;
        }
        let in_mask = weight >= 0.5;
        total += f64::from(value);
        if in_mask {
            inside += f64::from(value);
        }
        if hottest.is_none_or(|(best, _)| value > best) {
            hottest = Some((value, in_mask));
        }
    }
    Ok(Localisation {
        energy_inside: if total > 0.0 {
            (inside / total) as f32
        } else {
            0.0
        },
        pointing_hit: hottest.is_some_and(|(_, in_mask)| in_mask),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_and_pointing_count_only_what_the_tower_saw() {
        let heat = HeatMap {
            width: 4,
            height: 1,
            values: vec![0.2, 0.6, f32::NAN, 0.2],
        };
        let mask = Mask::rectangle(4, 1, 1, 0, 3, 1);
        let judged = localisation(&heat, &mask).unwrap();
        assert!((judged.energy_inside - 0.6).abs() < 1e-6);
        assert!(judged.pointing_hit);
        let elsewhere = Mask::rectangle(4, 1, 3, 0, 4, 1);
        assert!(!localisation(&heat, &elsewhere).unwrap().pointing_hit);
        assert!(localisation(&heat, &Mask::rectangle(3, 1, 0, 0, 1, 1)).is_err());
    }
}
