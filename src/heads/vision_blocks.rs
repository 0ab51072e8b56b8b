//! The fine-tuned image-tower blocks a `finetune` head carries: reading a block's parameters by
//! path (`ln_1.gamma`, `attn.in_proj.weight`, …) and putting other values in their place — the
//! same paths in training (values that carry gradients) and in the head file.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::clip::transformer::ResidualBlock;

/// Every float parameter of a block as `(path, tensor)`, flattened to rank 2 (`[1, n]` for a
/// vector), with its own shape.
pub fn block_params(block: &ResidualBlock) -> Vec<(String, Vec<usize>, Tensor<2>)> {
    struct Collect {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>, Tensor<2>)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            let shape = tensor.dims().to_vec();
            let columns = shape.last().copied().unwrap_or(1);
            let rows = shape.iter().product::<usize>() / columns.max(1);
            self.out
                .push((self.path.join("."), shape, tensor.reshape([rows, columns])));
        }
    }
    let mut collect = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    block.visit(&mut collect);
    collect.out
}

/// A copy of `block` whose parameters are `lookup(path)` (reshaped back), where it answers;
/// returns the paths it did not answer.
pub fn substitute(
    block: ResidualBlock,
    lookup: &mut dyn FnMut(&str, &[usize]) -> Option<Tensor<2>>,
) -> (ResidualBlock, Vec<String>) {
    struct Substitute<'a> {
        path: Vec<String>,
        lookup: &'a mut dyn FnMut(&str, &[usize]) -> Option<Tensor<2>>,
        missing: Vec<String>,
    }
    impl ModuleMapper for Substitute<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dims = param.val().dims();
            let path = self.path.join(".");
            match (self.lookup)(&path, &dims) {
                Some(value) => param.map(|_| value.reshape(dims)),
                None => {
                    self.missing.push(path);
                    param
                }
            }
        }
    }
    let mut mapper = Substitute {
        path: Vec::new(),
        lookup,
        missing: Vec::new(),
    };
    let block = block.map(&mut mapper);
    (block, mapper.missing)
}
