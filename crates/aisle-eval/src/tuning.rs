//! Hyper-parameter candidates for each model: a small grid around the values the literature
//! found good (Dacrema et al., 2019; Anelli et al., 2022), cut to the budget. The default
//! settings are always the first candidate.

use aisle_models::{
    AlsConfig, BprConfig, EaseConfig, Gru4RecConfig, Gru4RecLoss, ItemKnnConfig, Mixer,
    ModelConfig, PopularityConfig, PureSvdConfig, Rp3BetaConfig, SequentialRulesConfig,
    SessionKnnConfig, Similarity, TransformerConfig, UserKnnConfig,
};

/// Up to `budget` settings to try for the model called `name` (unknown names give none).
pub fn candidates(name: &str, budget: usize) -> Vec<ModelConfig> {
    let mut out: Vec<ModelConfig> = ModelConfig::default_for(name).into_iter().collect();
    match name {
        "pop" => {
            for window_days in [7.0, 30.0] {
                out.push(ModelConfig::Pop(PopularityConfig {
                    window_days: Some(window_days),
                    ..PopularityConfig::default()
                }));
            }
            out.push(ModelConfig::Pop(PopularityConfig {
                per_category: true,
                ..PopularityConfig::default()
            }));
        }
        "itemknn" => {
            for (k, shrink) in [(50, 0.0), (200, 10.0), (100, 50.0), (500, 10.0), (20, 10.0)] {
                out.push(ModelConfig::ItemKnn(ItemKnnConfig {
                    k,
                    shrink,
                    binary: true,
                }));
            }
        }
        "userknn" => {
            for (k, similarity) in [
                (100, Similarity::Cosine),
                (20, Similarity::Cosine),
                (50, Similarity::Pearson),
            ] {
                out.push(ModelConfig::UserKnn(UserKnnConfig {
                    k,
                    similarity,
                    ..UserKnnConfig::default()
                }));
            }
        }
        "rp3beta" => {
            for (alpha, beta, k) in [
                (0.8, 0.3, 100),
                (1.0, 0.7, 200),
                (0.6, 0.4, 500),
                (1.2, 0.5, 50),
            ] {
                out.push(ModelConfig::Rp3Beta(Rp3BetaConfig { alpha, beta, k }));
            }
        }
        "ease" => {
            for lambda in [100.0, 250.0, 1000.0, 2000.0] {
                out.push(ModelConfig::Ease(EaseConfig {
                    lambda,
                    ..EaseConfig::default()
                }));
            }
        }
        "als" => {
            for (regularization, alpha) in [(0.1, 10.0), (0.01, 2.0), (0.1, 40.0), (1.0, 10.0)] {
                out.push(ModelConfig::Als(AlsConfig {
                    regularization,
                    alpha,
                    ..AlsConfig::default()
                }));
            }
        }
        "bpr" => {
            for (learning_rate, regularization) in [(0.01, 0.01), (0.1, 0.001), (0.05, 0.001)] {
                out.push(ModelConfig::Bpr(BprConfig {
                    learning_rate,
                    regularization,
                    ..BprConfig::default()
                }));
            }
        }
        "puresvd" => {
            for factors in [16, 32, 128] {
                out.push(ModelConfig::PureSvd(PureSvdConfig {
                    factors,
                    ..PureSvdConfig::default()
                }));
            }
        }
        "sknn" => {
            for (k, sample_size) in [(50, 500), (200, 1000), (100, 2000)] {
                out.push(ModelConfig::Sknn(SessionKnnConfig {
                    k,
                    sample_size,
                    ..SessionKnnConfig::default()
                }));
            }
        }
        "sr" => {
            for steps in [3, 5, 20] {
                out.push(ModelConfig::Sr(SequentialRulesConfig {
                    steps,
                    ..SequentialRulesConfig::default()
                }));
            }
        }
        "gru4rec" => {
            // The official implementation's best BPR-max settings for RetailRocket (a shop's
            // clicks), beside the cross-entropy defaults.
            out.push(ModelConfig::Gru4Rec(Gru4RecConfig {
                hidden: 224,
                loss: Gru4RecLoss::BprMax,
                batch_size: 80,
                dropout_embed: 0.5,
                dropout_hidden: 0.05,
                learning_rate: 0.05,
                momentum: 0.4,
                sample_alpha: 0.4,
                bpreg: 1.95,
                logq: 0.0,
                elu_param: 0.5,
                ..Gru4RecConfig::default()
            }));
        }
        "transformer" => {
            // The levers that moved validation on the Amazon files: BSARec's filter beside
            // attention, a higher learning rate with more dropout, the filter's weight.
            let base = TransformerConfig::default();
            for (mixer, learning_rate, dropout, filter_alpha) in [
                (Mixer::Filter, 0.002, 0.4, 0.7),
                (Mixer::Attention, 0.002, 0.4, 0.7),
                (Mixer::Filter, 0.002, 0.5, 0.5),
                (Mixer::Filter, 0.001, 0.3, 0.3),
            ] {
                out.push(ModelConfig::Transformer(TransformerConfig {
                    mixer,
                    learning_rate,
                    dropout,
                    filter_alpha,
                    ..base.clone()
                }));
            }
        }
        // Caser picks its epochs on its own validation split and takes minutes per fit: its
        // defaults are the one candidate (tune it with --config).
        _ => {}
    }
    out.truncate(budget.max(1));
    out
}
