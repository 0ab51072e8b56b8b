//! int8 weights for the browser: every matmul weight of the model (all `Linear`s, which here
//! include the 1×1, 2×2 and transposed convolutions) quantized with burn's `Quantizer`
//! (min-max calibration, symmetric Q8, per tensor or per block). Norms, biases, embeddings and
//! the 7×7 patch convolution stay f32: they are a small part of the bytes and a large part of
//! the accuracy.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, Quantizer};
use burn::tensor::quantization::{Calibration, QuantValue, ScaleDtype};
use burn::tensor::{Device, Tensor};

use super::model::{Sam2Error, Sam2Model};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Granularity {
    /// One scale per weight matrix.
    PerTensor,
    /// One scale per `n` consecutive values of a row.
    PerBlock(u8),
}

impl Int8Granularity {
    /// The label stored in the burnpack and shown to users.
    pub fn label(&self) -> String {
        match self {
            Self::PerTensor => "int8-per-tensor".to_string(),
            Self::PerBlock(size) => format!("int8-per-block-{size}"),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "tensor" | "per-tensor" | "int8-per-tensor" => Some(Self::PerTensor),
            other => {
                let size = other
                    .strip_prefix("int8-per-block-")
                    .or_else(|| other.strip_prefix("block-"))
                    .or_else(|| other.strip_prefix("block"))?;
                size.parse::<u8>()
                    .ok()
                    .filter(|size| *size > 0)
                    .map(Self::PerBlock)
            }
        }
    }
}

/// Paths of the matmul weights (`….weight` of `Linear`s; the 4-D patch convolution is not one).
#[derive(Default)]
struct MatmulWeights {
    path: Vec<String>,
    /// (path, columns).
    found: Vec<(String, usize)>,
}

impl ModuleVisitor for MatmulWeights {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if D == 2 && path.ends_with(".weight") {
            self.found.push((path, param.dims()[D - 1]));
        }
    }
}

/// The model with its matmul weights in int8. Per block, a matrix whose rows do not divide
/// into blocks (the 1-, 4- and 8-wide heads) keeps one scale for the whole matrix.
pub fn quantize_int8(model: Sam2Model, granularity: Int8Granularity) -> Sam2Model {
    let device = model.device();
    let base = device
        .settings()
        .quantization
        .scheme
        .with_value(QuantValue::Q8S);
    let mut weights = MatmulWeights::default();
    model.visit(&mut weights);
    let (blocked, whole): (Vec<_>, Vec<_>) =
        weights
            .found
            .into_iter()
            .partition(|(_, columns)| match granularity {
                Int8Granularity::PerBlock(size) => columns % usize::from(size) == 0,
                Int8Granularity::PerTensor => false,
            });
    let paths =
        |list: Vec<(String, usize)>| list.into_iter().map(|(path, _)| path).collect::<Vec<_>>();
    let mut model = model;
    if let Int8Granularity::PerBlock(size) = granularity
        && !blocked.is_empty()
    {
        let scheme = base.per_block([size], ScaleDtype::F32);
        let mut quantizer = Quantizer::new(Calibration::MinMax, scheme);
        model =
            model.quantize_weights_group(&mut quantizer, ParamGroup::from_paths(paths(blocked)));
    }
    if !whole.is_empty() {
        let mut quantizer = Quantizer::new(Calibration::MinMax, base.per_tensor(ScaleDtype::F32));
        model = model.quantize_weights_group(&mut quantizer, ParamGroup::from_paths(paths(whole)));
    }
    model
}

struct Dequantizer;

impl ModuleMapper for Dequantizer {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| tensor.dequantize())
    }
}

/// The model with every int8 weight expanded back to f32 (values unchanged: the int8 rounding
/// stays). burn 0.22's int8 matmul kernel does not compile under WebGPU (Chromium's WGSL
/// validation rejects its shader; native Vulkan and the CPU backend run it), so in the browser
/// int8 is the download and storage format and the GPU computes in f32.
pub fn dequantize(model: Sam2Model) -> Sam2Model {
    model.map(&mut Dequantizer)
}

/// Whether int8 weights are worth computing with as int8 on `device`: only on a native GPU.
/// - burn's CPU backend (natively and in the page) expands every int8 weight to f32 on every
///   matmul: measured (issue 36, SAM 2.1 tiny, per block of 32) `set_image` 1.3× and a point
///   prompt 3× slower than with f32 weights. Expanded once at load, int8 runs at f32's speed;
///   the cost is memory, 4 bytes a weight (SAM 2.1 tiny: 126 MB instead of 36 MB), which a
///   machine that runs SAM 2 at all has.
/// - The browser's WebGPU rejects burn 0.22's int8 matmul shader (WGSL has no 8-bit integers).
pub fn int8_computes_on(device: &Device) -> bool {
    !cfg!(target_arch = "wasm32") && *device != Device::flex()
}

impl Sam2Model {
    /// A burnpack read for computing on `device`: int8 weights stay int8 only where they compute
    /// as int8 ([`int8_computes_on`]); elsewhere they are read on the CPU backend, expanded to
    /// f32 there once (the int8 rounding stays: see [`dequantize`]) and moved to `device`, so
    /// int8 is then the download and storage format only. The label still names the stored
    /// weights (`int8-per-block-32`, …).
    pub fn from_burnpack_for(bytes: Vec<u8>, device: &Device) -> Result<(Self, String), Sam2Error> {
        if int8_computes_on(device) {
            return Self::from_burnpack(bytes, device);
        }
        let (model, weights) = Self::from_burnpack(bytes, &Device::flex())?;
        if weights == "f32" {
            return Ok((model.to_device(device), weights));
        }
        Ok((dequantize(model).to_device(device), weights))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularity_labels_round_trip() {
        for granularity in [Int8Granularity::PerTensor, Int8Granularity::PerBlock(32)] {
            assert_eq!(
                Int8Granularity::parse(&granularity.label()),
                Some(granularity)
            );
        }
        assert_eq!(
            Int8Granularity::parse("block-64"),
            Some(Int8Granularity::PerBlock(64))
        );
        assert_eq!(Int8Granularity::parse("block-0"), None);
        assert_eq!(Int8Granularity::parse("int4"), None);
    }
}
