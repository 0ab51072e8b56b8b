//! Reading a tensor's values back to the host the one way every device allows: awaited (WebGPU
//! in the browser cannot read synchronously), as f32 whatever the device's float type.

use burn::tensor::Tensor;

/// Why a read-back failed, in burn's words.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct ReadbackError(pub String);

/// The tensor's values, row-major.
pub async fn read_floats<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, ReadbackError> {
    tensor
        .into_data_async()
        .await
        .map_err(|error| ReadbackError(format!("{error:?}")))?
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|error| ReadbackError(format!("{error:?}")))
}
