//! Element-wise kernels that burn's CPU backend (flex) runs one element at a time on one thread,
//! run here in SIMD ([`math`]: `erf` and `exp` without library calls, so the loops vectorise) and,
//! natively and in the page's threaded CPU module (`cfg(wasm_threads)`), across the cores.
//!
//! Why: flex evaluates GELU as libm's scalar `erff` per element on the calling thread. SAM 2's
//! mask decoder applies it to `[prompts, 256, 256, 32]` upscaled features and Hiera's MLPs to
//! every token, so on the automatic generator half of the main thread's time was GELU while the
//! other cores waited (`perf record` on `cargo bench --bench sam2_segment`); with the cores used,
//! the scalar `erff` was still 9 % of SAM 2's time (issue 36). OpenAI CLIP's QuickGELU was three
//! such passes (scale, sigmoid with a scalar `expf`, product) over every MLP activation; here it
//! is one.
//!
//! The values are not burn's bit for bit (its `erff` and `expf` are libm's): they are as close to
//! the exact functions as burn's (tests in [`math`]), and the same on every machine.

mod math;

use burn::tensor::activation;
use burn::tensor::{DType, Device, Tensor};

/// Below this many elements reading the values out and back costs more than the SIMD saves
/// (and natively, handing work to other threads too).
const HOST_FROM: usize = 1 << 16;

/// Whether `x` is worth computing on the host: a large f32 tensor on the CPU backend without
/// autodiff (an autodiff tensor must stay in burn's graph: the host path reads the values out and
/// back, which cuts it). An autodiff device compares equal to its inner device, so autodiff is
/// asked of the tensor itself.
fn on_host<const D: usize>(x: &Tensor<D>) -> bool {
    x.shape().num_elements() >= HOST_FROM
        && x.dtype() == DType::F32
        && !x.is_autodiff()
        && x.device() == Device::flex()
}

/// GELU, the exact (erf) form: `0.5·x·(1 + erf(x/√2))`, as `burn::tensor::activation::gelu`.
/// Large f32 tensors on the CPU backend are computed in SIMD (on all cores where there are
/// threads); anything
/// else (GPU, autodiff, small) is burn's own.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_host(&x) {
        return map(x, math::gelu);
    }
    activation::gelu(x)
}

/// QuickGELU, `x·σ(1.702·x)`, as OpenAI trained CLIP and as
/// `x.clone() * sigmoid(x * 1.702)` computes it in burn; one SIMD pass where [`gelu`] would take
/// that path.
pub fn quick_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_host(&x) {
        return map(x, math::quick_gelu);
    }
    x.clone() * activation::sigmoid(x * 1.702)
}

/// `f` applied to every element of an f32 tensor on the CPU backend: across the cores natively
/// and in the threaded CPU module, on the one thread there is in the page's main module. Generic over `f` (not a `fn` pointer), so that each
/// function is inlined into the loop and the loop vectorised.
fn map<const D: usize, F>(x: Tensor<D>, f: F) -> Tensor<D>
where
    F: Fn(f32) -> f32 + Copy + Send + Sync,
{
    let device = x.device();
    let shape = x.shape();
    // `on_host` checked the dtype is f32, so this cannot fail.
    let mut values = x
        .into_data()
        .try_into_vec::<f32>()
        .expect("an f32 tensor reads back as f32");
    #[cfg(any(not(target_arch = "wasm32"), wasm_threads))]
    {
        use rayon::prelude::*;
        /// Elements per task: large enough that scheduling is noise, small enough to balance.
        const CHUNK: usize = 1 << 14;
        values
            .par_chunks_mut(CHUNK)
            .for_each(|chunk| math::apply(chunk, f));
    }
    #[cfg(all(target_arch = "wasm32", not(wasm_threads)))]
    math::apply(&mut values, f);
    Tensor::from_data(burn::tensor::TensorData::new(values, shape), &device)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// More than `HOST_FROM` values: both signs, the tails, zero and values near it.
    fn probe(device: &Device) -> Tensor<2> {
        let values: Vec<f32> = (0..(1 << 17) + 3)
            .map(|i| ((i as f32) * 0.000_731).sin() * 12.0 - (i % 7) as f32 * 1e-4)
            .collect();
        let count = values.len();
        Tensor::<2>::from_data(TensorData::new(values, [count / 5, 5]), device)
    }

    fn values(tensor: Tensor<2>) -> Vec<f32> {
        tensor.into_data().try_into_vec::<f32>().unwrap()
    }

    /// The tensor path is the scalar function of [`math`] at every element, and within a few
    /// ulp of burn's own (libm's `erff`/`expf`).
    #[test]
    fn host_gelu_and_quick_gelu_are_the_math_functions_and_near_burns() {
        let x = probe(&Device::flex());
        let inputs = values(x.clone());
        let cases = [
            (
                gelu(x.clone()),
                activation::gelu(x.clone()),
                math::gelu as fn(f32) -> f32,
            ),
            (
                quick_gelu(x.clone()),
                x.clone() * activation::sigmoid(x.clone() * 1.702),
                math::quick_gelu,
            ),
        ];
        for (ours, burns, scalar) in cases {
            let (ours, burns) = (values(ours), values(burns));
            for ((&input, &ours), &burns) in inputs.iter().zip(&ours).zip(&burns) {
                assert_eq!(ours.to_bits(), scalar(input).to_bits(), "at {input}");
                let bound = 1e-6 * input.abs().max(1.0);
                assert!(
                    (ours - burns).abs() <= bound,
                    "at {input}: {ours} vs burn's {burns}"
                );
            }
        }
    }

    #[test]
    fn autodiff_tensors_take_burns_path() {
        // Above the size at which the host-core path would be taken, so that only the device
        // test keeps an autodiff tensor in burn's graph (a 3-element tensor never reached it).
        let elements = 2 * super::HOST_FROM;
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
