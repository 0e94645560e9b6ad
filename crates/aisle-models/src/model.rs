//! Every model by name: configs, construction, and the versioned model file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{
    Als, AlsConfig, Bpr, BprConfig, CaserConfig, Ease, EaseConfig, Error, FitReport, Gru4Rec,
    Gru4RecConfig, Hybrid, HybridConfig, ItemKnn, ItemKnnConfig, Popularity, PopularityConfig,
    PureSvd, PureSvdConfig, Query, Recommender, Result, Rp3Beta, Rp3BetaConfig, Scored,
    SequentialRules, SequentialRulesConfig, SessionKnn, SessionKnnConfig, TfIdf, TfIdfConfig,
    TrainData, Transformer, TransformerConfig, UserKnn, UserKnnConfig,
};

/// Names of every model, as used by `aisle eval --models` and the config.
pub const MODEL_NAMES: [&str; 15] = [
    "pop",
    "itemknn",
    "userknn",
    "rp3beta",
    "ease",
    "als",
    "bpr",
    "puresvd",
    "tfidf",
    "sknn",
    "sr",
    "hybrid",
    "transformer",
    "caser",
    "gru4rec",
];

/// A model's name and hyper-parameters (JSON or TOML: `{ "model": "als", "factors": 128 }`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum ModelConfig {
    Pop(PopularityConfig),
    ItemKnn(ItemKnnConfig),
    UserKnn(UserKnnConfig),
    Rp3Beta(Rp3BetaConfig),
    Ease(EaseConfig),
    Als(AlsConfig),
    Bpr(BprConfig),
    PureSvd(PureSvdConfig),
    TfIdf(TfIdfConfig),
    Sknn(SessionKnnConfig),
    Sr(SequentialRulesConfig),
    Hybrid(HybridConfig),
    Transformer(TransformerConfig),
    Caser(CaserConfig),
    Gru4Rec(Gru4RecConfig),
}

impl ModelConfig {
    /// The default settings of the model called `name`.
    pub fn default_for(name: &str) -> Result<ModelConfig> {
        Ok(match name {
            "pop" => ModelConfig::Pop(PopularityConfig::default()),
            "itemknn" => ModelConfig::ItemKnn(ItemKnnConfig::default()),
            "userknn" => ModelConfig::UserKnn(UserKnnConfig::default()),
            "rp3beta" => ModelConfig::Rp3Beta(Rp3BetaConfig::default()),
            "ease" => ModelConfig::Ease(EaseConfig::default()),
            "als" => ModelConfig::Als(AlsConfig::default()),
            "bpr" => ModelConfig::Bpr(BprConfig::default()),
            "puresvd" => ModelConfig::PureSvd(PureSvdConfig::default()),
            "tfidf" => ModelConfig::TfIdf(TfIdfConfig::default()),
            "sknn" => ModelConfig::Sknn(SessionKnnConfig::default()),
            "sr" => ModelConfig::Sr(SequentialRulesConfig::default()),
            "hybrid" => ModelConfig::Hybrid(HybridConfig::default()),
            "transformer" => ModelConfig::Transformer(TransformerConfig::default()),
            "caser" => ModelConfig::Caser(CaserConfig::default()),
            "gru4rec" => ModelConfig::Gru4Rec(Gru4RecConfig::default()),
            other => {
                return Err(Error::UnknownModel {
                    name: other.to_string(),
                    known: MODEL_NAMES.join(", "),
                });
            }
        })
    }

    /// The model's name.
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Pop(_) => "pop",
            ModelConfig::ItemKnn(_) => "itemknn",
            ModelConfig::UserKnn(_) => "userknn",
            ModelConfig::Rp3Beta(_) => "rp3beta",
            ModelConfig::Ease(_) => "ease",
            ModelConfig::Als(_) => "als",
            ModelConfig::Bpr(_) => "bpr",
            ModelConfig::PureSvd(_) => "puresvd",
            ModelConfig::TfIdf(_) => "tfidf",
            ModelConfig::Sknn(_) => "sknn",
            ModelConfig::Sr(_) => "sr",
            ModelConfig::Hybrid(_) => "hybrid",
            ModelConfig::Transformer(_) => "transformer",
            ModelConfig::Caser(_) => "caser",
            ModelConfig::Gru4Rec(_) => "gru4rec",
        }
    }

    /// The same settings with another random seed (models without randomness are unchanged).
    pub fn with_seed(self, seed: u64) -> ModelConfig {
        match self {
            ModelConfig::Als(c) => ModelConfig::Als(AlsConfig { seed, ..c }),
            ModelConfig::Bpr(c) => ModelConfig::Bpr(BprConfig { seed, ..c }),
            ModelConfig::PureSvd(c) => ModelConfig::PureSvd(PureSvdConfig { seed, ..c }),
            ModelConfig::Transformer(c) => {
                ModelConfig::Transformer(TransformerConfig { seed, ..c })
            }
            ModelConfig::Caser(c) => ModelConfig::Caser(CaserConfig { seed, ..c }),
            ModelConfig::Gru4Rec(c) => ModelConfig::Gru4Rec(Gru4RecConfig { seed, ..c }),
            other => other,
        }
    }

    /// The same settings with training cut after `seconds` (at an epoch's end) and no
    /// refit, for the models that train by epochs and stop early (the transformer and
    /// Caser); `None` for the others. Successive halving tunes through it.
    pub fn with_time_budget(&self, seconds: f64) -> Option<ModelConfig> {
        match self.clone() {
            ModelConfig::Transformer(c) => Some(ModelConfig::Transformer(TransformerConfig {
                time_budget_seconds: seconds,
                refit: false,
                ..c
            })),
            ModelConfig::Caser(c) => Some(ModelConfig::Caser(CaserConfig {
                time_budget_seconds: seconds,
                refit: false,
                ..c
            })),
            _ => None,
        }
    }

    /// The settings in one line, for logs and reports (a debug rendering: enough for a
    /// person to read, and it keeps serde_json out of this crate).
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }
}

/// A model of any kind: what is fitted, scored and saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Model {
    Pop(Popularity),
    ItemKnn(ItemKnn),
    UserKnn(UserKnn),
    Rp3Beta(Rp3Beta),
    Ease(Ease),
    Als(Als),
    Bpr(Bpr),
    PureSvd(PureSvd),
    TfIdf(TfIdf),
    Sknn(SessionKnn),
    Sr(SequentialRules),
    Hybrid(Box<Hybrid>),
    Transformer(Box<Transformer>),
    /// Caser: the transformer's network with its convolution mixer.
    Caser(Box<Transformer>),
    Gru4Rec(Box<Gru4Rec>),
}

impl Default for Model {
    fn default() -> Self {
        Model::Pop(Popularity::default())
    }
}

/// Identifies a model file; the version changes whenever the encoding does.
const MAGIC: &[u8; 8] = b"AISLEMDL";
const FILE_VERSION: u32 = 1;

impl Model {
    /// An unfitted model from its config.
    pub fn build(config: &ModelConfig) -> Model {
        match config.clone() {
            ModelConfig::Pop(c) => Model::Pop(Popularity::new(c)),
            ModelConfig::ItemKnn(c) => Model::ItemKnn(ItemKnn::new(c)),
            ModelConfig::UserKnn(c) => Model::UserKnn(UserKnn::new(c)),
            ModelConfig::Rp3Beta(c) => Model::Rp3Beta(Rp3Beta::new(c)),
            ModelConfig::Ease(c) => Model::Ease(Ease::new(c)),
            ModelConfig::Als(c) => Model::Als(Als::new(c)),
            ModelConfig::Bpr(c) => Model::Bpr(Bpr::new(c)),
            ModelConfig::PureSvd(c) => Model::PureSvd(PureSvd::new(c)),
            ModelConfig::TfIdf(c) => Model::TfIdf(TfIdf::new(c)),
            ModelConfig::Sknn(c) => Model::Sknn(SessionKnn::new(c)),
            ModelConfig::Sr(c) => Model::Sr(SequentialRules::new(c)),
            ModelConfig::Hybrid(c) => Model::Hybrid(Box::new(Hybrid::new(c))),
            ModelConfig::Transformer(c) => Model::Transformer(Box::new(Transformer::new(c))),
            ModelConfig::Caser(c) => Model::Caser(Box::new(Transformer::new(c.network()))),
            ModelConfig::Gru4Rec(c) => Model::Gru4Rec(Box::new(Gru4Rec::new(c))),
        }
    }

    /// The model's name, as in [`MODEL_NAMES`].
    pub fn name(&self) -> &'static str {
        match self {
            Model::Pop(_) => "pop",
            Model::ItemKnn(_) => "itemknn",
            Model::UserKnn(_) => "userknn",
            Model::Rp3Beta(_) => "rp3beta",
            Model::Ease(_) => "ease",
            Model::Als(_) => "als",
            Model::Bpr(_) => "bpr",
            Model::PureSvd(_) => "puresvd",
            Model::TfIdf(_) => "tfidf",
            Model::Sknn(_) => "sknn",
            Model::Sr(_) => "sr",
            Model::Hybrid(_) => "hybrid",
            Model::Transformer(_) => "transformer",
            Model::Caser(_) => "caser",
            Model::Gru4Rec(_) => "gru4rec",
        }
    }

    fn inner(&self) -> &dyn Recommender {
        match self {
            Model::Pop(m) => m,
            Model::ItemKnn(m) => m,
            Model::UserKnn(m) => m,
            Model::Rp3Beta(m) => m,
            Model::Ease(m) => m,
            Model::Als(m) => m,
            Model::Bpr(m) => m,
            Model::PureSvd(m) => m,
            Model::TfIdf(m) => m,
            Model::Sknn(m) => m,
            Model::Sr(m) => m,
            Model::Hybrid(m) => m.as_ref(),
            Model::Transformer(m) | Model::Caser(m) => m.as_ref(),
            Model::Gru4Rec(m) => m.as_ref(),
        }
    }

    fn inner_mut(&mut self) -> &mut dyn Recommender {
        match self {
            Model::Pop(m) => m,
            Model::ItemKnn(m) => m,
            Model::UserKnn(m) => m,
            Model::Rp3Beta(m) => m,
            Model::Ease(m) => m,
            Model::Als(m) => m,
            Model::Bpr(m) => m,
            Model::PureSvd(m) => m,
            Model::TfIdf(m) => m,
            Model::Sknn(m) => m,
            Model::Sr(m) => m,
            Model::Hybrid(m) => m.as_mut(),
            Model::Transformer(m) | Model::Caser(m) => m.as_mut(),
            Model::Gru4Rec(m) => m.as_mut(),
        }
    }

    /// Writes the fitted model to `path` atomically ([`aisle_core::fs::write_atomic`]),
    /// sealed under `key` in an encrypted data directory ([`aisle_seal`]): a model holds
    /// who interacted with what, as much as the store does.
    pub fn save(&self, path: &Path, key: Option<&aisle_seal::Key>) -> Result<()> {
        let payload = postcard::to_stdvec(self).map_err(|e| Error::ModelFile {
            path: path.to_path_buf(),
            reason: format!("cannot encode: {e}"),
        })?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FILE_VERSION.to_le_bytes());
        bytes.extend_from_slice(&payload);
        aisle_core::fs::write_atomic(path, &aisle_seal::seal_file(path, &bytes, key))?;
        Ok(())
    }

    /// Reads a model written by [`Model::save`] (with the same `key`).
    pub fn load(path: &Path, key: Option<&aisle_seal::Key>) -> Result<Model> {
        let bytes = aisle_seal::open_file(path, fs_err::read(path)?, key)?;
        let bad = |reason: String| Error::ModelFile {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(bad("not an aisle model file".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("four bytes"));
        if version != FILE_VERSION {
            return Err(bad(format!(
                "model file version {version}, this aisle reads version {FILE_VERSION}: retrain the model"
            )));
        }
        postcard::from_bytes(&bytes[12..]).map_err(|e| bad(format!("damaged model file: {e}")))
    }
}

impl Recommender for Model {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        self.inner_mut().fit(data)
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        self.inner().score(query, scores);
    }

    fn score_batch(&self, queries: &[Query<'_>], scores: &mut [f32]) {
        self.inner().score_batch(queries, scores);
    }

    fn similar_items(&self, item: u32, k: usize) -> Vec<Scored> {
        self.inner().similar_items(item, k)
    }

    fn n_items(&self) -> usize {
        self.inner().n_items()
    }

    fn item_factors(&self) -> Option<crate::ann::InnerProduct<'_>> {
        self.inner().item_factors()
    }

    fn query_factors(&self, query: &Query<'_>) -> Option<Vec<f32>> {
        self.inner().query_factors(query)
    }

    fn forget(&mut self, change: &crate::Forgetting<'_>) -> Result<crate::Forgot> {
        let name = self.name();
        self.inner_mut().forget(change).map_err(|e| match e {
            Error::Forget { reason, .. } => Error::Forget {
                model: name,
                reason,
            },
            other => other,
        })
    }
}
