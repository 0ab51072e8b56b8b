//! Support heads: what learns the classes from a handful of labelled images, on top of CLIP's
//! (mask-focused) image embeddings.
//!
//! Every head, however trained, predicts with one formula over the unit-length image embedding
//! `f` ([`head::HeadModel::logits`]):
//!
//! ```text
//! logits = s·f·Tᵀ  +  f·Wᵀ + b  +  α·exp(−β·(1 − f·Kᵀ))·V
//!          text      linear        cache (Tip-Adapter)
//! ```
//!
//! | kind | trains | uses |
//! |---|---|---|
//! | `zero-shot` | nothing | T = averaged prompt embeddings |
//! | `linear-probe` | W, b (multinomial logistic regression, L2 chosen on held-out images) | W, b |
//! | `lp-text` | W, b from the text embeddings, pulled back towards them | W, b |
//! | `tip-adapter` | nothing; α, β searched | T, cache K = support embeddings, V = one-hot labels |
//! | `tip-adapter-f` | K (the cache keys) | T, cache |
//! | `coop` | context vectors in front of the class names, through the frozen text tower | T from the learnt prompts |
//! | `finetune` | the image tower's last N blocks (the paper's setting: λ·contrastive + (1−λ)·cross-entropy) | T, and f from the fine-tuned tower |
//!
//! Prediction and training ([`train`]) are apart. Both run on both targets for the heads that
//! learn from embeddings alone (the probes and Tip-Adapter(-F): the page trains them with burn's
//! autodiff in wasm); CoOp and the fine-tune train through CLIP's towers, natively only. Either
//! way the result is a `.mfh` file ([`head_file`]) that both targets read.

#[cfg(not(target_arch = "wasm32"))]
pub mod arrays;
pub mod classifier;
pub mod features;
pub mod head;
pub mod head_file;
pub mod host_pack;
pub mod rng;
pub mod tip_adapter;
pub mod train;
pub mod vision_blocks;

pub use features::FeatureSet;
pub use head::HeadModel;
pub use head_file::{HeadFile, HeadHeader, HeadKind};
