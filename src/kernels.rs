//! Element-wise kernels that burn's CPU backend (flex) runs on one thread, run here across the
//! machine's cores — with the same arithmetic, so the values are the same bit for bit.
//!
//! Why: flex evaluates GELU as `erff` per element on the calling thread. SAM 2's mask decoder
//! applies it to `[prompts, 256, 256, 32]` upscaled features and Hiera's MLPs to every token, so
//! on the automatic generator half of the main thread's time was GELU while the other cores
//! waited (`perf record` on `cargo bench --bench sam2_segment`).

use burn::tensor::activation;
use burn::tensor::{DType, Device, Tensor};

/// Below this many elements handing work to other threads costs more than it saves.
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_FROM: usize = 1 << 16;

/// GELU, the exact (erf) form: `0.5·x·(1 + erf(x/√2))`, as `burn::tensor::activation::gelu`.
/// Large f32 tensors on the native CPU backend are computed on all cores with the very
/// expression and `erff` flex uses; anything else (GPU, autodiff, wasm, small) is burn's own.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(not(target_arch = "wasm32"))]
    if x.shape().num_elements() >= PARALLEL_FROM
        && x.dtype() == DType::F32
        && x.device() == Device::flex()
    {
        return native::gelu(x);
    }
    activation::gelu(x)
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use burn::tensor::{Tensor, TensorData};
    use rayon::prelude::*;

    /// Elements per task: large enough that scheduling is noise, small enough to balance.
    const CHUNK: usize = 1 << 14;

    pub(super) fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        let shape = x.shape();
        // The caller checked the dtype is f32, so this cannot fail.
        let mut values = x
            .into_data()
            .try_into_vec::<f32>()
            .expect("an f32 tensor reads back as f32");
        let sqrt2 = core::f32::consts::SQRT_2;
        values.par_chunks_mut(CHUNK).for_each(|chunk| {
            for value in chunk {
                // Written as flex writes it (`burn_flex::ops::activation::gelu`): same order of
                // operations, same libm `erff`, hence the same rounding.
                let x = *value;
                *value = 0.5 * x * (1.0 + libm::erff(x / sqrt2));
            }
        });
        Tensor::from_data(TensorData::new(values, shape), &device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn parallel_gelu_is_burns_gelu_bit_for_bit() {
        let device = Device::flex();
        // Both signs, the erf tails, zero and values near it; more than PARALLEL_FROM elements.
        let values: Vec<f32> = (0..(1 << 17) + 3)
            .map(|i| ((i as f32) * 0.000_731).sin() * 9.0 - (i % 7) as f32 * 1e-4)
            .collect();
        let count = values.len();
        let x = Tensor::<2>::from_data(TensorData::new(values, [count / 5, 5]), &device);
        let ours = gelu(x.clone()).into_data().try_into_vec::<f32>().unwrap();
        let burns = activation::gelu(x)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert_eq!(ours.len(), burns.len());
        let differing = ours
            .iter()
            .zip(&burns)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differing, 0, "{differing} of {count} values differ");
    }

    #[test]
    fn small_and_autodiff_tensors_take_burns_path() {
        let device = Device::flex().autodiff();
        let x = Tensor::<1>::from_data(TensorData::new(vec![-1.0f32, 0.0, 2.0], [3]), &device)
            .require_grad();
        let y = gelu(x.clone()).sum();
        let gradients = y.backward();
        assert!(
            x.grad(&gradients).is_some(),
            "the gradient must flow through"
        );
    }
}
