//! `erf` and `exp` (of arguments ≤ 0) in f32, written so that a loop over them becomes SIMD code:
//! no branches (both pieces are computed and one is selected), no library calls (libm's `erff` and
//! `expf` are scalar calls the compiler cannot vectorise), no fused multiply-adds (Rust does not
//! contract `a * b + c`, so a scalar, an SSE2, an AVX2 and an AVX-512 loop round every operation
//! alike and give the same bits on every machine).
//!
//! Why: GELU's `erff` was 9 % of SAM 2's time on the CPU backend and the sigmoid's `expf` in
//! OpenAI CLIP's QuickGELU runs over every MLP activation (`perf record` of `medfocus bench`,
//! issue 36); PyTorch evaluates both sixteen lanes at a time on AVX-512.
//!
//! Accuracy (tests below, against f64 `erf`/`exp` over a sweep of f32 values): `erf` within 3 ulp
//! (libm's `erff`: 1 ulp), `exp_nonpositive` within 2 ulp down to −87.3, where f32 leaves its
//! normal range; below that it returns 0 (the true values are subnormals under 1.2e-38). GELU and
//! QuickGELU built from them are as far from the exact functions as burn's own are: their error
//! is dominated by the rounding of the formula around them.

/// 1.5 · 2²³: adding it to a float under 2²² in magnitude rounds it to an integer (ties to even)
/// and leaves that integer in the low bits of the sum's mantissa.
const ROUNDING_MAGIC: f32 = 12_582_912.0;
const LOG2_E: f32 = core::f32::consts::LOG2_E;
/// ln 2 in two parts (Cody and Waite): the first has few mantissa bits, so `n · LN2_HIGH` is
/// exact for every `n` the range allows, and the reduced argument keeps its precision.
const LN2_HIGH: f32 = 0.693_359_4;
const LN2_LOW: f32 = -2.121_944_4e-4;
/// Below this `exp(x)` is no longer a normal f32.
const EXP_FLUSH_BELOW: f32 = -87.33;

/// `exp(x)` for `x ≤ 0` (NaN stays NaN; below −87.33 the result is 0).
/// `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`; `exp(r)` by its Taylor series to `r⁷` (truncation
/// error under 6e-9, relative) and `2ⁿ` written into the exponent bits.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    let shifted = x * LOG2_E + ROUNDING_MAGIC;
    let n = shifted - ROUNDING_MAGIC;
    let n_bits = shifted.to_bits().wrapping_sub(ROUNDING_MAGIC.to_bits());
    let r = x - n * LN2_HIGH - n * LN2_LOW;
    let mut series = 1.0 / 5040.0;
    for inverse_factorial in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        series = series * r + inverse_factorial;
    }
    // n ∈ [−126, 0] wherever the result is used, so 2ⁿ is a normal float.
    let power_of_two = f32::from_bits(n_bits.wrapping_add(127).wrapping_shl(23));
    let value = series * power_of_two;
    if x < EXP_FLUSH_BELOW { 0.0 } else { value }
}

/// `erf(x)/x` on `|x| < 1` as a polynomial in `x²` (relative error of the fit 1.2e-9). Its first
/// coefficient is the fit's, 2/√π less one f32 ulp: the fit trades it against the others.
#[allow(clippy::approx_constant)]
const ERF_SMALL: [f32; 7] = [
    1.128_379_1,
    -0.376_126_26,
    0.112_835_85,
    -0.026_853_817,
    0.005_188_335,
    -8.010_248e-4,
    7.854_027e-5,
];
/// `erfc(a)·exp(a²)` on `1 ≤ a < 3.92` as a polynomial in `1/a` (relative error of the fit
/// 1.3e-8; it multiplies `erfc`, at most 0.16 there, so the error in `erf` is under 3e-9).
const ERFC_SCALED_LARGE: [f32; 10] = [
    1.282_108_7e-4,
    0.561_643_6,
    0.021_472_087,
    -0.379_859_9,
    0.241_066_05,
    0.219_836_09,
    -0.516_103_4,
    0.423_495,
    -0.173_763_65,
    0.029_669_449,
];
/// From here on `erf` rounds to ±1 in f32.
const ERF_IS_ONE_FROM: f32 = 3.92;

#[inline(always)]
fn polynomial<const N: usize>(coefficients: &[f32; N], x: f32) -> f32 {
    let mut value = coefficients[N - 1];
    for &coefficient in coefficients[..N - 1].iter().rev() {
        value = value * x + coefficient;
    }
    value
}

/// The error function, within 3 ulp (coefficients fitted by weighted least squares against
/// `mpmath`, the fit's error given beside each table).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let square = x * x;
    let small = x * polynomial(&ERF_SMALL, square);
    // At a = 0 this piece is inf or NaN, and not the one selected.
    let tail = exp_nonpositive(-square) * polynomial(&ERFC_SCALED_LARGE, 1.0 / a);
    let large = if a >= ERF_IS_ONE_FROM {
        1.0
    } else {
        1.0 - tail
    };
    if a < 1.0 { small } else { large.copysign(x) }
}

/// GELU, exact form: `0.5·x·(1 + erf(x/√2))` (as PyTorch's CPU kernel writes it: `x·(1/√2)`).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * core::f32::consts::FRAC_1_SQRT_2))
}

/// The logistic function, `exp` only of `−|z|` so that it never overflows.
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    let e = exp_nonpositive(-z.abs());
    let inverse = 1.0 / (1.0 + e);
    if z >= 0.0 { inverse } else { e * inverse }
}

/// QuickGELU, `x·σ(1.702·x)`, as OpenAI trained CLIP.
#[inline(always)]
pub fn quick_gelu(x: f32) -> f32 {
    x * sigmoid(x * 1.702)
}

/// `f` over every value, in the widest SIMD the CPU has (AVX-512, AVX2; SSE2 or simd128
/// otherwise): the same loop compiled for each, chosen at run time.
#[inline(always)]
pub fn apply(values: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, the only feature the function is compiled with.
            return unsafe { x86::apply_avx512(values, f) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { x86::apply_avx2(values, f) };
        }
    }
    apply_baseline(values, f);
}

#[inline(always)]
fn apply_baseline(values: &mut [f32], f: impl Fn(f32) -> f32) {
    for value in values {
        *value = f(*value);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    #[target_feature(enable = "avx512f")]
    pub(super) fn apply_avx512(values: &mut [f32], f: impl Fn(f32) -> f32) {
        super::apply_baseline(values, f);
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn apply_avx2(values: &mut [f32], f: impl Fn(f32) -> f32) {
        super::apply_baseline(values, f);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// Distance from `got` to the f64 value `want` in units of the f32 spacing at `want`.
    fn ulps(got: f32, want: f64) -> f64 {
        let nearest = want as f32;
        let spacing = f64::from(f32::from_bits(nearest.abs().to_bits() + 1) - nearest.abs());
        (f64::from(got) - want).abs() / spacing
    }

    /// Every 2048th f32 between `low` and `high` (both signs when `low < 0`), and the ends.
    fn sweep(low: f32, high: f32) -> Vec<f32> {
        let mut values = vec![low, high, 0.0, -0.0];
        for magnitude_bits in (0..high.abs().max(low.abs()).to_bits()).step_by(2048) {
            let magnitude = f32::from_bits(magnitude_bits);
            for value in [magnitude, -magnitude] {
                if (low..=high).contains(&value) {
                    values.push(value);
                }
            }
        }
        values
    }

    /// The largest distance in ulp of `f` from its f64 definition on `sweep(low, high)`, and where.
    fn worst_ulps(
        f: impl Fn(f32) -> f32,
        exact: impl Fn(f64) -> f64,
        low: f32,
        high: f32,
    ) -> (f64, f32) {
        sweep(low, high)
            .into_iter()
            .map(|x| (ulps(f(x), exact(f64::from(x))), x))
            .fold(
                (0.0, 0.0),
                |worst, this| if this.0 > worst.0 { this } else { worst },
            )
    }

    #[test]
    fn erf_is_within_three_ulp() {
        let worst = worst_ulps(erf, libm::erf, -6.0, 6.0);
        assert!(worst.0 <= 3.0, "erf({}) is {} ulp off", worst.1, worst.0);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert!(erf(f32::NAN).is_nan());
        assert_eq!(erf(-0.0).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn exp_is_within_two_ulp_and_flushes_below_the_normal_range() {
        let worst = worst_ulps(exp_nonpositive, libm::exp, -87.3, 0.0);
        assert!(worst.0 <= 2.0, "exp({}) is {} ulp off", worst.1, worst.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }

    /// The largest absolute error of `f32` functions against their f64 definition on a sweep.
    fn worst_error(f: impl Fn(f32) -> f32, exact: impl Fn(f64) -> f64) -> f64 {
        sweep(-12.0, 12.0)
            .into_iter()
            .map(|x| (f64::from(f(x)) - exact(f64::from(x))).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn gelu_and_quick_gelu_are_as_exact_as_burns() {
        let exact_gelu = |x: f64| 0.5 * x * (1.0 + libm::erf(x / core::f64::consts::SQRT_2));
        // burn_flex's f32 GELU: x/√2 then libm's erff.
        let burns_gelu = |x: f32| 0.5 * x * (1.0 + libm::erff(x / core::f32::consts::SQRT_2));
        let (ours, burns) = (
            worst_error(gelu, exact_gelu),
            worst_error(burns_gelu, exact_gelu),
        );
        assert!(
            ours <= burns * 1.05,
            "GELU: {ours:e} against burn's {burns:e}"
        );
        let exact_quick = |x: f64| x / (1.0 + (-1.702 * x).exp());
        let burns_quick = |x: f32| {
            let z = x * 1.702;
            let sigmoid = if z >= 0.0 {
                1.0 / (1.0 + (-z).exp())
            } else {
                z.exp() / (1.0 + z.exp())
            };
            x * sigmoid
        };
        let (ours, burns) = (
            worst_error(quick_gelu, exact_quick),
            worst_error(burns_quick, exact_quick),
        );
        assert!(
            ours <= burns * 1.05,
            "QuickGELU: {ours:e} against burn's {burns:e}"
        );
    }

    /// The SIMD loops round as the scalar function does (no contraction into FMA, no
    /// approximate reciprocals), so every machine gives the same bits.
    #[test]
    fn the_simd_loop_gives_the_scalar_bits() {
        let mut values = sweep(-40.0, 40.0);
        values.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            1e-40,
            -1e-40,
            f32::MAX,
            f32::MIN,
        ]);
        for f in [gelu as fn(f32) -> f32, quick_gelu] {
            let mut simd = values.clone();
            apply(&mut simd, f);
            for (&x, &y) in values.iter().zip(&simd) {
                let scalar = f(x);
                let same = scalar.to_bits() == y.to_bits() || (scalar.is_nan() && y.is_nan());
                assert!(same, "at {x}: scalar {scalar}, SIMD {y}");
            }
        }
    }
}
