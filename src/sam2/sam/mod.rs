//! `sam2/modeling/sam/`: the SAM heads.

pub mod mask_decoder;
pub mod prompt_encoder;
pub mod transformer;
