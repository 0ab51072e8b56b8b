//! The text side's tokenizers: CLIP's BPE and BERT's WordPiece, both behind open_clip's
//! cleaning, both producing fixed-length rows ready for the text tower.

pub mod bpe;
pub mod clean;
pub mod wordpiece;

pub use bpe::ClipBpeTokenizer;
pub use wordpiece::{VocabularyError, WordPieceTokenizer};

/// The tokenizer a model's text tower was trained with.
#[derive(Debug)]
pub enum TextTokenizer {
    Bpe(ClipBpeTokenizer),
    WordPiece(WordPieceTokenizer),
}

impl TextTokenizer {
    /// Fixed-length rows of token ids for the text tower.
    pub fn tokenize_batch<S: AsRef<str>>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        texts
            .iter()
            .map(|text| match self {
                TextTokenizer::Bpe(tokenizer) => tokenizer.tokenize(text.as_ref()),
                TextTokenizer::WordPiece(tokenizer) => tokenizer.tokenize(text.as_ref()),
            })
            .collect()
    }

    pub fn context_length(&self) -> usize {
        match self {
            TextTokenizer::Bpe(tokenizer) => tokenizer.context_length(),
            TextTokenizer::WordPiece(tokenizer) => tokenizer.context_length(),
        }
    }
}
