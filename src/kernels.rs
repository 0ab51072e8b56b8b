//! Element-wise kernels that burn's CPU backend (flex) runs on one thread, run here across the
//! machine's cores — with the same arithmetic, so the values are the same bit for bit.
//!
//! Why: flex evaluates GELU as `erff` per element on the calling thread. SAM 2's mask decoder
//! applies it to `[prompts, 256, 256, 32]` upscaled features and Hiera's MLPs to every token, so
//! on the automatic generator half of the main thread's time was GELU while the other cores
//! waited (`perf record` on `cargo bench --bench sam2_segment`). OpenAI CLIP's QuickGELU was three
//! such passes (scale, sigmoid, product) over every MLP activation; here it is one.

use burn::tensor::Tensor;
use burn::tensor::activation;
#[cfg(not(target_arch = "wasm32"))]
use burn::tensor::{DType, Device};

/// Below this many elements handing work to other threads costs more than it saves.
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_FROM: usize = 1 << 16;

/// Whether `x` is worth computing on the host's cores: a large f32 tensor on the native CPU
/// backend without autodiff (an autodiff tensor must stay in burn's graph: the host path reads
/// the values out and back, which cuts it). Never in wasm: no threads there. An autodiff device
/// compares equal to its inner device, so autodiff is asked of the tensor itself.
#[cfg(not(target_arch = "wasm32"))]
fn on_host_cores<const D: usize>(x: &Tensor<D>) -> bool {
    x.shape().num_elements() >= PARALLEL_FROM
        && x.dtype() == DType::F32
        && !x.is_autodiff()
        && x.device() == Device::flex()
}

/// GELU, the exact (erf) form: `0.5·x·(1 + erf(x/√2))`, as `burn::tensor::activation::gelu`.
/// Large f32 tensors on the native CPU backend are computed on all cores with the very
/// expression and `erff` flex uses; anything else (GPU, autodiff, wasm, small) is burn's own.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(not(target_arch = "wasm32"))]
    if on_host_cores(&x) {
        let sqrt2 = core::f32::consts::SQRT_2;
        // As `burn_flex::ops::activation::gelu` writes it: same operations in the same order,
        // the same libm `erff`, hence the same rounding.
        return native::map(x, move |x| 0.5 * x * (1.0 + libm::erff(x / sqrt2)));
    }
    activation::gelu(x)
}

/// QuickGELU, `x·σ(1.702·x)`, as OpenAI trained CLIP and as
/// `x.clone() * sigmoid(x * 1.702)` computes it in burn; one pass over all cores where [`gelu`]
/// would take that path.
pub fn quick_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(not(target_arch = "wasm32"))]
    if on_host_cores(&x) {
        return native::map(x, |x| x * native::sigmoid(x * 1.702));
    }
    x.clone() * activation::sigmoid(x * 1.702)
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use burn::tensor::{Tensor, TensorData};
    use rayon::prelude::*;

    /// Elements per task: large enough that scheduling is noise, small enough to balance.
    const CHUNK: usize = 1 << 14;

    /// `f` applied to every element of an f32 tensor on the CPU backend, across the cores.
    pub(super) fn map<const D: usize>(x: Tensor<D>, f: impl Fn(f32) -> f32 + Sync) -> Tensor<D> {
        let device = x.device();
        let shape = x.shape();
        // The caller checked the dtype is f32, so this cannot fail.
        let mut values = x
            .into_data()
            .try_into_vec::<f32>()
            .expect("an f32 tensor reads back as f32");
        values.par_chunks_mut(CHUNK).for_each(|chunk| {
            for value in chunk {
                *value = f(*value);
            }
        });
        Tensor::from_data(TensorData::new(values, shape), &device)
    }

    /// flex's f32 sigmoid (`burn_flex::ops::activation`), the branch that keeps `exp` from
    /// overflowing included.
    pub(super) fn sigmoid(x: f32) -> f32 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// More than `PARALLEL_FROM` values: both signs, the tails, zero and values near it.
    fn probe(device: &Device) -> Tensor<2> {
        let values: Vec<f32> = (0..(1 << 17) + 3)
            .map(|i| ((i as f32) * 0.000_731).sin() * 12.0 - (i % 7) as f32 * 1e-4)
            .collect();
        let count = values.len();
        Tensor::<2>::from_data(TensorData::new(values, [count / 5, 5]), device)
    }

    fn differing_bits(a: Tensor<2>, b: Tensor<2>) -> usize {
        let a = a.into_data().try_into_vec::<f32>().unwrap();
        let b = b.into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count()
    }

    #[test]
    fn parallel_gelu_is_burns_gelu_bit_for_bit() {
        let x = probe(&Device::flex());
        assert_eq!(differing_bits(gelu(x.clone()), activation::gelu(x)), 0);
    }

    #[test]
    fn parallel_quick_gelu_is_burns_composition_bit_for_bit() {
        let x = probe(&Device::flex());
        let burns = x.clone() * activation::sigmoid(x.clone() * 1.702);
        assert_eq!(differing_bits(quick_gelu(x), burns), 0);
    }

    #[test]
    fn autodiff_tensors_take_burns_path() {
        // Above the size at which the host-core path would be taken, so that only the device
        // test keeps an autodiff tensor in burn's graph (a 3-element tensor never reached it).
        let elements = 2 * super::PARALLEL_FROM;
        let values: Vec<f32> = (0..elements)
            .map(|index| (index % 997) as f32 / 997.0 * 8.0 - 4.0)
            .collect();
        let device = Device::flex().autodiff();
        let input = || {
            Tensor::<1>::from_data(TensorData::new(values.clone(), [elements]), &device)
                .require_grad()
        };
        let (ours, theirs) = (input(), input());
        let gradients = (gelu(ours.clone()) + quick_gelu(ours.clone()))
            .sum()
            .backward();
        let reference = (activation::gelu(theirs.clone())
            + theirs.clone() * activation::sigmoid(theirs.clone() * 1.702))
        .sum()
        .backward();
        let ours = ours
            .grad(&gradients)
            .expect("the gradient must flow through");
        let theirs = theirs.grad(&reference).unwrap();
        let (ours, theirs) = (
            ours.into_data().try_into_vec::<f32>().unwrap(),
            theirs.into_data().try_into_vec::<f32>().unwrap(),
        );
        assert_eq!(ours.len(), elements);
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "gradients differ by {worst}");
    }
}
