//! The transformer on small synthetic sequences whose answers are known: a cyclic pattern
//! it must learn exactly, the causal mask, determinism, the purchase head, int8 scoring.

use aisle_core::EventKind;
use aisle_features::{EventLog, Interaction};
use aisle_models::{
    Gru4Rec, Gru4RecConfig, Gru4RecLoss, Mixer, Model, ModelConfig, Query, Recommender, TrainData,
    TrainDataBuilder, Transformer, TransformerConfig, top_k,
};

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn ev(user: u32, item: u32, t: i64, kind: EventKind) -> Interaction {
    Interaction {
        user,
        item,
        kind,
        timestamp_ms: t,
        session: 0,
        value: 0.0,
    }
}

/// Every user walks the items in a cycle, item i always followed by i + 1 (mod n), for
/// `len` to `len + 5` steps.
fn cyclic(n_users: u32, n_items: u32, len: u32) -> (TrainData, Vec<Vec<u32>>) {
    let mut events = Vec::new();
    let mut sequences = Vec::new();
    for u in 0..n_users {
        let start = (u * 7) % n_items;
        let seq: Vec<u32> = (0..len + u % 6).map(|k| (start + k) % n_items).collect();
        for (k, &item) in seq.iter().enumerate() {
            events.push(ev(
                u,
                item,
                i64::from(u) * DAY + k as i64 * MINUTE,
                EventKind::View,
            ));
        }
        sequences.push(seq);
    }
    let log = EventLog::from_events(events, n_users as usize, n_items as usize);
    (TrainDataBuilder::new().build(&log), sequences)
}

fn tiny(epochs: usize) -> TransformerConfig {
    TransformerConfig {
        dim: 32,
        ffn_dim: 64,
        layers: 1,
        heads: 2,
        max_len: 10,
        dropout: 0.0,
        epochs,
        patience: epochs,
        batch_size: 16,
        learning_rate: 0.01,
        warmup_steps: 5,
        verbose: false,
        ..TransformerConfig::default()
    }
}

fn scores(model: &dyn Recommender, history: &[u32]) -> Vec<f32> {
    let mut s = vec![0.0; model.n_items()];
    model.score(
        &Query {
            history,
            ..Query::default()
        },
        &mut s,
    );
    s
}

/// The tiny settings with each way of mixing positions.
fn every_mixer(epochs: usize) -> [TransformerConfig; 3] {
    [Mixer::Attention, Mixer::Filter, Mixer::Convolution].map(|mixer| TransformerConfig {
        mixer,
        ..tiny(epochs)
    })
}

/// Hit rate @1 of the next item of each cyclic sequence, scored as an anonymous session
/// (the next item was never seen after it).
fn cyclic_hits(model: &dyn Recommender, sequences: &[Vec<u32>]) -> usize {
    sequences
        .iter()
        .filter(|seq| {
            let top = top_k(&scores(model, seq), 1, |_| true);
            top[0].item == (seq.last().expect("non-empty") + 1) % 20
        })
        .count()
}

#[test]
fn learns_a_deterministic_pattern_to_full_hit_rate() {
    let (data, sequences) = cyclic(60, 20, 8);
    for config in every_mixer(60) {
        let mixer = config.mixer;
        let mut model = Transformer::new(config);
        let report = model.fit(&data).expect("fit");
        assert!(
            report.loss_curve.first() > report.loss_curve.last(),
            "{mixer:?}: the loss falls: {:?}",
            report.loss_curve
        );
        let hits = cyclic_hits(&model, &sequences);
        assert_eq!(hits, sequences.len(), "{mixer:?}: hit rate @1 must be 100%");
    }
}

#[test]
fn gru4rec_learns_the_pattern_with_either_loss() {
    let (data, sequences) = cyclic(60, 20, 8);
    for loss in [Gru4RecLoss::CrossEntropy, Gru4RecLoss::BprMax] {
        let mut model = Gru4Rec::new(Gru4RecConfig {
            hidden: 32,
            loss,
            batch_size: 8,
            n_sample: 8,
            bpreg: if loss == Gru4RecLoss::BprMax {
                1.0
            } else {
                0.0
            },
            elu_param: if loss == Gru4RecLoss::BprMax {
                0.5
            } else {
                0.0
            },
            learning_rate: 0.1,
            epochs: 40,
            ..Gru4RecConfig::default()
        });
        let report = model.fit(&data).expect("fit");
        assert!(
            report.loss_curve.first() > report.loss_curve.last(),
            "{loss:?}: the loss falls: {:?}",
            report.loss_curve
        );
        let hits = cyclic_hits(&model, &sequences);
        assert_eq!(hits, sequences.len(), "{loss:?}: hit rate @1 must be 100%");
    }
}

#[test]
fn gru4rec_refuses_bad_settings() {
    let (data, _) = cyclic(10, 20, 5);
    let mut model = Gru4Rec::new(Gru4RecConfig {
        dropout_hidden: 1.0,
        ..Gru4RecConfig::default()
    });
    let err = model.fit(&data).expect_err("dropout of 1 keeps nothing");
    assert!(
        err.to_string()
            .contains("dropout_hidden 1 is not in [0, 1)"),
        "{err}"
    );
}

#[test]
fn a_later_event_never_changes_an_earlier_output() {
    let (data, _) = cyclic(30, 20, 8);
    for config in every_mixer(2) {
        a_later_event_never_changes_an_earlier_output_with(&data, config);
    }
}

fn a_later_event_never_changes_an_earlier_output_with(data: &TrainData, config: TransformerConfig) {
    let mixer = config.mixer;
    let mut model = Transformer::new(config);
    model.fit(data).expect("fit");
    let kinds = [
        EventKind::View,
        EventKind::Click,
        EventKind::View,
        EventKind::View,
    ];
    let times = [0, MINUTE, 2 * MINUTE, 3 * MINUTE];
    let a = model
        .hidden_states(&Query {
            history: &[1, 2, 3, 4],
            kinds: &kinds,
            times_ms: &times,
            ..Query::default()
        })
        .expect("forward");
    let changed_kinds = [
        EventKind::View,
        EventKind::Click,
        EventKind::View,
        EventKind::Purchase,
    ];
    let changed_times = [0, MINUTE, 2 * MINUTE, 90 * DAY];
    let b = model
        .hidden_states(&Query {
            history: &[1, 2, 3, 17],
            kinds: &changed_kinds,
            times_ms: &changed_times,
            ..Query::default()
        })
        .expect("forward");
    assert_eq!(a.len(), 4);
    for t in 0..3 {
        for (x, y) in a[t].iter().zip(&b[t]) {
            assert!(
                (x - y).abs() < 1e-6,
                "{mixer:?}: position {t} changed: {x} vs {y}"
            );
        }
    }
    let last_moved = a[3].iter().zip(&b[3]).any(|(x, y)| (x - y).abs() > 1e-3);
    assert!(
        last_moved,
        "{mixer:?}: the changed position itself does change"
    );
}

#[test]
fn fixed_seed_gives_identical_scores_and_save_load_keeps_them() {
    let (data, _) = cyclic(30, 20, 8);
    let config = ModelConfig::Transformer(TransformerConfig {
        dropout: 0.2,
        ..tiny(5)
    });
    let fit = || {
        let mut m = Model::build(&config);
        m.fit(&data).expect("fit");
        m
    };
    let (first, second) = (fit(), fit());
    let history = [3u32, 4, 5];
    assert_eq!(scores(&first, &history), scores(&second, &history));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("transformer.model");
    first.save(&path, None).expect("save");
    let loaded = Model::load(&path, None).expect("load");
    assert_eq!(scores(&first, &history), scores(&loaded, &history));
}

#[test]
fn purchase_head_separates_buying_sessions() {
    // Sessions that view items 0..5 end in a purchase; sessions over items 10..15 never do.
    let mut events = Vec::new();
    let mut t = 0;
    for u in 0..80u32 {
        let buyer = u % 2 == 0;
        let base = if buyer { 0 } else { 10 };
        for s in 0..3u32 {
            let a = base + (u + s) % 5;
            let b = base + (u + s + 2) % 5;
            events.push(ev(u, a, t, EventKind::View));
            events.push(ev(u, b, t + MINUTE, EventKind::View));
            if buyer {
                events.push(ev(u, b, t + 2 * MINUTE, EventKind::Purchase));
            }
            t += DAY;
        }
    }
    let data = TrainDataBuilder::new().build(&EventLog::from_events(events, 80, 20));
    let mut model = Transformer::new(TransformerConfig {
        purchase_weight: 1.0,
        // No next-item validation: the training loss (both heads) picks the epoch.
        validation_sequences: 0,
        ..tiny(30)
    });
    model.fit(&data).expect("fit");
    // A new session that views two items, as the training sessions did.
    let probability = |(first, second): (u32, u32)| {
        model
            .purchase_probability(&Query {
                history: &[first, second],
                kinds: &[EventKind::View, EventKind::View],
                times_ms: &[0, MINUTE],
                ..Query::default()
            })
            .expect("the data has purchases, so the head is trained")
    };
    for (buying, browsing) in [((1, 3), (11, 13)), ((3, 0), (13, 10))] {
        let (p_buy, p_browse) = (probability(buying), probability(browsing));
        assert!(
            p_buy > 0.8 && p_browse < 0.1,
            "P(purchase) {p_buy} after items {buying:?}, {p_browse} after items {browsing:?}"
        );
    }
}

#[test]
fn int8_scoring_keeps_the_ranking() {
    let (data, sequences) = cyclic(60, 20, 8);
    let mut model = Transformer::new(tiny(40));
    model.fit(&data).expect("fit");
    let float: Vec<u32> = sequences
        .iter()
        .map(|s| top_k(&scores(&model, s), 1, |_| true)[0].item)
        .collect();
    let float_bytes = model.item_table_bytes();
    model.set_int8(true);
    let int8: Vec<u32> = sequences
        .iter()
        .map(|s| top_k(&scores(&model, s), 1, |_| true)[0].item)
        .collect();
    assert_eq!(float, int8);
    assert!(model.item_table_bytes() * 3 < float_bytes);
}

#[test]
fn best_weights_are_checkpointed() {
    let (data, _) = cyclic(30, 20, 8);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ckpt").join("best.safetensors");
    let mut model = Transformer::new(TransformerConfig {
        checkpoint: Some(path.clone()),
        ..tiny(3)
    });
    model.fit(&data).expect("fit");
    let bytes = std::fs::read(&path).expect("the checkpoint was written");
    // safetensors: an 8-byte header length, then a JSON header naming the tensors.
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).expect("utf-8 header");
    assert!(
        header.contains("\"items\"") && header.contains("block0.query.weight"),
        "{header}"
    );
}

#[test]
fn bad_settings_are_refused() {
    let (data, _) = cyclic(10, 20, 5);
    let mut model = Transformer::new(TransformerConfig {
        dim: 30,
        heads: 4,
        ..tiny(1)
    });
    let err = model.fit(&data).expect_err("4 heads cannot split 30 dims");
    assert!(
        err.to_string().contains("heads (4) must divide dim (30)"),
        "{err}"
    );
}
