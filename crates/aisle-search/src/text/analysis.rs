//! Tokenisation for shop text in English and Chinese.
//!
//! Chinese product titles have no spaces, so runs of CJK ideographs are segmented into words
//! with jieba (its search mode, which also emits the shorter words inside long ones, so
//! "全脂牛奶" is found by "牛奶"). Everything else is split into alphanumeric words,
//! lowercased and folded to ASCII. Two analyzers are registered: `aisle_stem` adds English
//! stemming for BM25 (so "fruits" matches "fruit"), `aisle_raw` does not, so typo and
//! prefix matching compare what was typed with what is written.

use std::sync::{Arc, OnceLock};

use jieba_rs::Jieba;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
};

use crate::encoder::is_cjk;

/// Name of the stemmed analyzer (BM25 fields).
pub const STEMMED: &str = "aisle_stem";
/// Name of the unstemmed analyzer (typo and prefix matching).
pub const RAW: &str = "aisle_raw";

fn jieba() -> Arc<Jieba> {
    static JIEBA: OnceLock<Arc<Jieba>> = OnceLock::new();
    JIEBA.get_or_init(|| Arc::new(Jieba::new())).clone()
}

/// Splits mixed English and Chinese text into lowercase words.
#[derive(Clone)]
pub struct ShopTokenizer {
    jieba: Arc<Jieba>,
    tokens: Vec<Token>,
}

impl Default for ShopTokenizer {
    fn default() -> Self {
        Self {
            jieba: jieba(),
            tokens: Vec::new(),
        }
    }
}

impl ShopTokenizer {
    /// The stemmed and unstemmed analyzers, by name.
    pub fn analyzers() -> [(&'static str, TextAnalyzer); 2] {
        [
            (
                STEMMED,
                TextAnalyzer::builder(ShopTokenizer::default())
                    .filter(AsciiFoldingFilter)
                    .filter(Stemmer::new(Language::English))
                    .build(),
            ),
            (
                RAW,
                TextAnalyzer::builder(ShopTokenizer::default())
                    .filter(AsciiFoldingFilter)
                    .build(),
            ),
        ]
    }

    fn push(&mut self, text: &str, from: usize, to: usize) {
        let position = self.tokens.len();
        self.tokens.push(Token {
            offset_from: from,
            offset_to: to,
            position,
            text: text[from..to].to_lowercase(),
            position_length: 1,
        });
    }

    fn tokenize(&mut self, text: &str) {
        self.tokens.clear();
        let mut chars = text.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            if is_cjk(c) {
                let mut end = start;
                while let Some(&(i, c)) = chars.peek() {
                    if !is_cjk(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                let run = &text[start..end];
                let jieba = self.jieba.clone();
                // jieba returns slices of `run`; their addresses give the byte offsets.
                for word in jieba.cut_for_search(run, true) {
                    let at = word.as_ptr() as usize - run.as_ptr() as usize;
                    self.push(text, start + at, start + at + word.len());
                }
            } else if c.is_alphanumeric() {
                let mut end = start;
                while let Some(&(i, c)) = chars.peek() {
                    if !c.is_alphanumeric() || is_cjk(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                self.push(text, start, end);
            } else {
                chars.next();
            }
        }
    }
}

impl Tokenizer for ShopTokenizer {
    type TokenStream<'a> = ShopTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> ShopTokenStream {
        self.tokenize(text);
        ShopTokenStream {
            tokens: std::mem::take(&mut self.tokens),
            index: None,
        }
    }
}

/// Tokens of one text, produced up front (filters rewrite them in place).
pub struct ShopTokenStream {
    tokens: Vec<Token>,
    index: Option<usize>,
}

impl TokenStream for ShopTokenStream {
    fn advance(&mut self) -> bool {
        let next = self.index.map_or(0, |i| i + 1);
        self.index = Some(next);
        next < self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.index.unwrap_or(0)]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.index.unwrap_or(0)]
    }
}

/// The terms `analyzer` makes of `text`, in order.
pub fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut terms = Vec::new();
    while stream.advance() {
        terms.push(stream.token().text.clone());
    }
    terms
}
