//! open_clip's `SimpleTokenizer`: byte-level BPE over OpenAI's `bpe_simple_vocab_16e6` merges.
//!
//! The merges and the BPE itself come from the `instant-clip-tokenizer` crate (it bundles the
//! same vocabulary file open_clip ships); this adds open_clip's cleaning in front and its
//! start/end tokens and truncation rule around it.

use instant_clip_tokenizer::{Token, Tokenizer};

use super::clean::{basic_clean, whitespace_clean};

pub struct ClipBpeTokenizer {
    inner: Tokenizer,
    context_length: usize,
}

impl std::fmt::Debug for ClipBpeTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipBpeTokenizer")
            .field("context_length", &self.context_length)
            .finish()
    }
}

impl ClipBpeTokenizer {
    /// OpenAI's vocabulary (49,408 ids) with the given context length (77 for every CLIP).
    pub fn openai(context_length: usize) -> Self {
        Self {
            inner: Tokenizer::new(),
            context_length: context_length.max(2),
        }
    }

    pub fn context_length(&self) -> usize {
        self.context_length
    }

    pub fn start_of_text(&self) -> u32 {
        u32::from(self.inner.start_of_text().to_u16())
    }

    pub fn end_of_text(&self) -> u32 {
        u32::from(self.inner.end_of_text().to_u16())
    }

    /// Token ids of `text` without start/end markers, after open_clip's `lower` cleaning.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let cleaned = whitespace_clean(&basic_clean(text)).to_lowercase();
        let mut tokens: Vec<Token> = Vec::new();
        self.inner.encode(&cleaned, &mut tokens);
        tokens
            .into_iter()
            .map(|token| u32::from(token.to_u16()))
            .collect()
    }

    /// One model input row: start, text, end; cut to the context with the end token kept last;
    /// zero-padded.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut row = Vec::with_capacity(self.context_length);
        row.push(self.start_of_text());
        row.extend(self.encode(text));
        row.push(self.end_of_text());
        if row.len() > self.context_length {
            row.truncate(self.context_length);
            if let Some(last) = row.last_mut() {
                *last = self.end_of_text();
            }
        }
        row.resize(self.context_length, 0);
        row
    }
}
