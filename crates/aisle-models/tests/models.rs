//! Hand-checked tiny cases per model, and one conformance suite run against every model.

use aisle_core::{EventKind, Item};
use aisle_features::{EventLog, Interaction, KindWeights};
use aisle_models::{
    Ease, EaseConfig, ItemKnn, ItemKnnConfig, MODEL_NAMES, Model, ModelConfig, Query, RecOptions,
    Recommender, Rp3Beta, Rp3BetaConfig, SequentialRules, SequentialRulesConfig, Similarity,
    TrainData, TrainDataBuilder, UserKnn, UserKnnConfig, recommend,
};

const DAY: i64 = 86_400_000;

fn ev(user: u32, item: u32, t: i64, kind: EventKind, value: f32) -> Interaction {
    Interaction {
        user,
        item,
        kind,
        timestamp_ms: t,
        session: 0,
        value,
    }
}

/// Binary views from `(user, [items])`, one day apart in the order given.
fn views(n_items: usize, rows: &[(u32, &[u32])]) -> TrainData {
    let mut events = Vec::new();
    let mut t = 0;
    for (u, items) in rows {
        for &i in *items {
            events.push(ev(*u, i, t, EventKind::View, 0.0));
            t += DAY;
        }
    }
    let n_users = rows.iter().map(|r| r.0).max().map_or(0, |u| u as usize + 1);
    TrainDataBuilder::new().build(&EventLog::from_events(events, n_users, n_items))
}

fn scores(model: &dyn Recommender, user: Option<u32>, history: &[u32]) -> Vec<f32> {
    let mut s = vec![0.0; model.n_items()];
    model.score(
        &Query {
            user,
            history,
            ..Query::default()
        },
        &mut s,
    );
    s
}

const CLOSE: f32 = 1e-5;

#[test]
fn itemknn_cosine_by_hand() {
    // u0: {0,1}; u1: {0,1,2}; u2: {1,2}.
    let data = views(3, &[(0, &[0, 1]), (1, &[0, 1, 2]), (2, &[1, 2])]);
    let mut m = ItemKnn::new(ItemKnnConfig {
        k: 10,
        shrink: 0.0,
        binary: true,
    });
    m.fit(&data).expect("fit");
    // |r0| = √2, |r1| = √3, |r2| = √2; r0·r1 = 2, r0·r2 = 1, r1·r2 = 2.
    assert!((m.similarity(0, 1) - 2.0 / 6f32.sqrt()).abs() < CLOSE);
    assert!((m.similarity(0, 2) - 0.5).abs() < CLOSE);
    assert!((m.similarity(2, 1) - 2.0 / 6f32.sqrt()).abs() < CLOSE);
    assert_eq!(m.similarity(1, 1), 0.0);
    // Shrinkage damps: 2 / (√6 + 10).
    let mut shrunk = ItemKnn::new(ItemKnnConfig {
        k: 10,
        shrink: 10.0,
        binary: true,
    });
    shrunk.fit(&data).expect("fit");
    assert!((shrunk.similarity(0, 1) - 2.0 / (6f32.sqrt() + 10.0)).abs() < CLOSE);
    // score(j) = Σ_{i in history} sim(i, j).
    let s = scores(&m, None, &[0, 2]);
    assert!((s[1] - 2.0 * 2.0 / 6f32.sqrt()).abs() < CLOSE);
}

#[test]
fn userknn_pearson_prediction_by_hand() {
    // Ratings: u0: i0=5, i1=3, i2=4; u1: i0=4, i1=2, i3=5; u2: i0=1, i1=5, i3=2.
    let r = |u, i, v| ev(u, i, 0, EventKind::Rating, v);
    let log = EventLog::from_events(
        vec![
            r(0, 0, 5.0),
            r(0, 1, 3.0),
            r(0, 2, 4.0),
            r(1, 0, 4.0),
            r(1, 1, 2.0),
            r(1, 3, 5.0),
            r(2, 0, 1.0),
            r(2, 1, 5.0),
            r(2, 3, 2.0),
        ],
        3,
        4,
    );
    let data = TrainDataBuilder::new()
        .weights(KindWeights::default())
        .build(&log);
    let mut m = UserKnn::new(UserKnnConfig {
        k: 2,
        similarity: Similarity::Pearson,
        shrink: 0.0,
    });
    m.fit(&data).expect("fit");
    // Means: u0 4, u1 11/3, u2 8/3. Over co-rated i0, i1:
    // sim(u0,u1) = 2 / √(2 · 26/9) = 0.83205; sim(u0,u2) = −4/… < 0, so u2 does not vote.
    let sim01 = 2.0 / (2.0f32 * 26.0 / 9.0).sqrt();
    let s = scores(&m, Some(0), &[]);
    assert!((s[3] - sim01 * 5.0).abs() < 1e-4, "r̂(u0, i3) = {}", s[3]);
    let sims = m.similarities(&[0, 1, 2], &[5.0, 3.0, 4.0], Some(0));
    assert!((sims[1] - sim01).abs() < 1e-4);
    assert!(sims[2] < 0.0);
    // Cosine: u0·u1 = 5·4 + 3·2 = 26; |u0| = √50, |u1| = √45.
    let mut cosine = UserKnn::new(UserKnnConfig {
        k: 2,
        similarity: Similarity::Cosine,
        shrink: 0.0,
    });
    cosine.fit(&data).expect("fit");
    let sims = cosine.similarities(&[0, 1, 2], &[5.0, 3.0, 4.0], Some(0));
    assert!((sims[1] - 26.0 / (50f32.sqrt() * 45f32.sqrt())).abs() < 1e-5);
}

#[test]
fn ease_closed_form_by_hand() {
    // u0: {0,1}; u1: {0}; u2: {1}. XᵀX = [[2,1],[1,2]]; with λ = 1, P = (1/8)[[3,−1],[−1,3]],
    // B_01 = −P_01 / P_11 = 1/3.
    let data = views(2, &[(0, &[0, 1]), (1, &[0]), (2, &[1])]);
    let mut m = Ease::new(EaseConfig {
        lambda: 1.0,
        ..EaseConfig::default()
    });
    m.fit(&data).expect("fit");
    assert!((m.weight(0, 1) - 1.0 / 3.0).abs() < CLOSE);
    assert_eq!(m.weight(0, 0), 0.0);
}

#[test]
fn rp3beta_random_walk_by_hand() {
    // u0: {0,1}; u1: {0,1,2}; u2: {1,2}. α = 1, β = 0:
    // W_01 = ½ (½ + ⅓) = 5/12, W_02 = ½ · ⅓ = 1/6; row-normalised: 5/7 and 2/7.
    let data = views(3, &[(0, &[0, 1]), (1, &[0, 1, 2]), (2, &[1, 2])]);
    let mut m = Rp3Beta::new(Rp3BetaConfig {
        alpha: 1.0,
        beta: 0.0,
        k: 10,
    });
    m.fit(&data).expect("fit");
    let s = scores(&m, None, &[0]);
    assert!(
        (s[1] - 5.0 / 7.0).abs() < CLOSE && (s[2] - 2.0 / 7.0).abs() < CLOSE,
        "{s:?}"
    );
}

#[test]
fn sequential_rules_by_hand() {
    // One user sequence a(0) b(1) c(2): rules a→b 1, a→c ½, b→c 1.
    let data = views(3, &[(0, &[0, 1, 2])]);
    let mut m = SequentialRules::new(SequentialRulesConfig::default());
    m.fit(&data).expect("fit");
    assert_eq!(scores(&m, None, &[2, 0]), vec![0.0, 1.0, 0.5]);
    assert_eq!(scores(&m, None, &[1]), vec![0.0, 0.0, 1.0]);
}

/// session-rec's `SequentialRules` (sr10-div, Ludewig et al. 2018/2021): for each item at
/// position q of a session, every earlier item at distance d = q - p <= steps gets the rule
/// "earlier -> this" with weight 1/d, repeats included (a -> a when a recurs); the next item
/// is scored by the rules of the last item alone, and history items are not masked.
#[test]
fn sequential_rules_follow_session_rec_counted_by_hand() {
    // Sessions a b a c and b c (items a=0, b=1, c=2), window 2:
    //   a b a c: a->b 1 (d 1); b->a 1, a->a 1/2; a->c 1, b->c 1/2 (a at d 3 is outside)
    //   b c:     b->c 1
    // Totals: a->a 0.5, a->b 1, a->c 1; b->a 1, b->c 1.5.
    let data = views(3, &[(0, &[0, 1, 0, 2]), (1, &[1, 2])]);
    let mut m = SequentialRules::new(SequentialRulesConfig {
        steps: 2,
        ..SequentialRulesConfig::default()
    });
    m.fit(&data).expect("fit");
    assert_eq!(
        scores(&m, None, &[1, 0]),
        vec![0.5, 1.0, 1.0],
        "last item a"
    );
    assert_eq!(
        scores(&m, None, &[0, 1]),
        vec![1.0, 0.0, 1.5],
        "last item b"
    );
    // Window 10: a at distance 3 from c adds 1/3 to a->c.
    let mut wide = SequentialRules::new(SequentialRulesConfig::default());
    wide.fit(&data).expect("fit");
    let s = scores(&wide, None, &[0]);
    assert!((s[2] - (1.0 + 1.0 / 3.0)).abs() < CLOSE, "{s:?}");
    assert!(
        (s[0] - 0.5).abs() < CLOSE && (s[1] - 1.0).abs() < CLOSE,
        "{s:?}"
    );
}

/// 40 users in two taste blocks: users 0..20 use items 0..10, users 20..40 items 10..20,
/// each user a deterministic 7 of their block's 10. Items carry their block in their text.
fn planted_blocks() -> TrainData {
    let mut events = Vec::new();
    let mut t = 0;
    for u in 0..40u32 {
        let base = if u < 20 { 0 } else { 10 };
        for step in 0..7u32 {
            let item = base + (u * 3 + step * 7) % 10;
            events.push(ev(u, item, t, EventKind::Purchase, 0.0));
            t += DAY;
        }
    }
    let items = (0..20)
        .map(|i| {
            let mut item = Item::new(i.to_string());
            item.title = if i < 10 {
                "garden hose".into()
            } else {
                "kitchen knife".into()
            };
            item.category = vec![if i < 10 {
                "garden".into()
            } else {
                "kitchen".into()
            }];
            Some(item)
        })
        .collect();
    TrainDataBuilder::new()
        .items(items)
        .build(&EventLog::from_events(events, 40, 20))
}

/// Default settings, but low-rank for factor models: with more factors than the data has
/// structure they memorise the observed cells and rank the unobserved ones by noise.
fn small_config(name: &str) -> ModelConfig {
    match ModelConfig::default_for(name).expect("known") {
        ModelConfig::Als(c) => ModelConfig::Als(aisle_models::AlsConfig { factors: 4, ..c }),
        ModelConfig::Bpr(c) => ModelConfig::Bpr(aisle_models::BprConfig { factors: 4, ..c }),
        ModelConfig::PureSvd(c) => {
            ModelConfig::PureSvd(aisle_models::PureSvdConfig { factors: 2, ..c })
        }
        ModelConfig::Transformer(c) => ModelConfig::Transformer(aisle_models::TransformerConfig {
            dim: 32,
            ffn_dim: 64,
            layers: 1,
            heads: 2,
            epochs: 60,
            learning_rate: 0.005,
            warmup_steps: 5,
            dropout: 0.2,
            // Forty validation cases are too few to pick an epoch; train them all.
            validation_sequences: 0,
            verbose: false,
            ..c
        }),
        ModelConfig::Caser(c) => ModelConfig::Caser(aisle_models::CaserConfig {
            dim: 32,
            epochs: 60,
            learning_rate: 0.005,
            validation_sequences: 0,
            ..c
        }),
        ModelConfig::Gru4Rec(c) => ModelConfig::Gru4Rec(aisle_models::Gru4RecConfig {
            hidden: 32,
            batch_size: 8,
            n_sample: 16,
            learning_rate: 0.1,
            epochs: 30,
            ..c
        }),
        other => other,
    }
}

#[test]
fn every_model_recovers_planted_blocks() {
    let data = planted_blocks();
    for name in MODEL_NAMES {
        let mut model = Model::build(&small_config(name));
        model.fit(&data).expect("fit");
        for user in [0u32, 5, 25, 39] {
            let seen = data.matrix.row(user).0.to_vec();
            let history = data.sequences.items(user).to_vec();
            let block = if user < 20 { 0..10 } else { 10..20 };
            let query = Query {
                user: Some(user),
                history: &history,
                ..Query::default()
            };
            let options = RecOptions {
                exclude: &seen,
                filter: None,
            };
            let top = recommend(&model, &query, 3, &options);
            if name == "pop" {
                continue; // popularity ignores the user by design
            }
            assert!(
                !top.is_empty(),
                "{name} recommends something to user {user}"
            );
            // The sequences follow a fixed order (next = current + 7 mod 10), which the
            // transformer learns exactly: its first pick is the true next item and only
            // that one is held to the block.
            let sequential = ["transformer", "caser", "gru4rec"].contains(&name);
            let checked = if sequential { 1 } else { top.len() };
            for s in &top[..checked] {
                assert!(
                    block.contains(&s.item),
                    "{name}: user {user} got item {} from the other block",
                    s.item
                );
                assert!(!seen.contains(&s.item), "{name}: excluded items stay out");
            }
        }
    }
}

#[test]
fn save_and_load_give_identical_scores() {
    let data = planted_blocks();
    let dir = tempfile::tempdir().expect("tempdir");
    for name in MODEL_NAMES {
        let mut model = Model::build(&small_config(name));
        model.fit(&data).expect("fit");
        let path = dir.path().join(format!("{name}.model"));
        model.save(&path, None).expect("save");
        let loaded = Model::load(&path, None).expect("load");
        for (user, history) in [(Some(3), vec![1u32, 2]), (None, vec![12, 15])] {
            assert_eq!(
                scores(&model, user, &history),
                scores(&loaded, user, &history),
                "{name}"
            );
        }
    }
    std::fs::write(dir.path().join("junk.model"), b"not a model").expect("write");
    let err = Model::load(&dir.path().join("junk.model"), None).expect_err("junk");
    assert!(err.to_string().contains("not an aisle model file"), "{err}");
}

#[test]
fn fixed_seed_gives_the_same_model() {
    let data = planted_blocks();
    for name in ["als", "bpr", "puresvd", "gru4rec"] {
        let fit = || {
            let mut m = Model::build(&ModelConfig::default_for(name).expect("known"));
            m.fit(&data).expect("fit");
            scores(&m, Some(7), &[])
        };
        assert_eq!(fit(), fit(), "{name} is deterministic for a fixed seed");
    }
}

#[test]
fn filters_and_anonymous_sessions() {
    let data = planted_blocks();
    let mut model = Model::build(&ModelConfig::default_for("itemknn").expect("known"));
    model.fit(&data).expect("fit");
    // An anonymous session of kitchen items gets kitchen items.
    let top = recommend(
        &model,
        &Query {
            user: None,
            history: &[11, 12],
            ..Query::default()
        },
        3,
        &RecOptions::default(),
    );
    assert!(top.iter().all(|s| (10..20).contains(&s.item)));
    // A filter keeps only what it accepts.
    let even = |i: u32| i.is_multiple_of(2);
    let top = recommend(
        &model,
        &Query {
            user: None,
            history: &[11, 12],
            ..Query::default()
        },
        3,
        &RecOptions {
            exclude: &[],
            filter: Some(&even),
        },
    );
    assert!(top.iter().all(|s| s.item % 2 == 0));
    // Unknown model names are an error that lists the known ones.
    let err = ModelConfig::default_for("sasrec").expect_err("unknown");
    assert!(err.to_string().contains("itemknn"), "{err}");
}

#[test]
fn popularity_counts_and_windows_by_hand() {
    // Item 0: three views long ago; item 2: two views on the last day; item 1: one view.
    let v = EventKind::View;
    let log = EventLog::from_events(
        vec![
            ev(0, 0, 0, v, 0.0),
            ev(1, 0, 0, v, 0.0),
            ev(2, 0, DAY, v, 0.0),
            ev(0, 1, 2 * DAY, v, 0.0),
            ev(1, 2, 10 * DAY, v, 0.0),
            ev(2, 2, 10 * DAY, v, 0.0),
        ],
        3,
        3,
    );
    let data = TrainDataBuilder::new().build(&log);
    let mut all = Model::build(&ModelConfig::default_for("pop").expect("known"));
    all.fit(&data).expect("fit");
    assert_eq!(scores(&all, None, &[]), vec![1.0, 1.0 / 3.0, 2.0 / 3.0]);
    let mut recent = Model::build(&ModelConfig::Pop(aisle_models::PopularityConfig {
        window_days: Some(1.0),
        per_category: false,
    }));
    recent.fit(&data).expect("fit");
    assert_eq!(scores(&recent, None, &[]), vec![0.0, 0.0, 1.0]);
}

#[test]
fn tfidf_profile_scores_by_hand() {
    let items = ["red apple", "green apple", "red car"]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut item = Item::new(i.to_string());
            item.title = (*t).to_string();
            Some(item)
        })
        .collect();
    let log = EventLog::from_events(vec![ev(0, 0, 0, EventKind::View, 0.0)], 1, 3);
    let data = TrainDataBuilder::new().items(items).build(&log);
    let mut m = Model::build(&ModelConfig::TfIdf(aisle_models::TfIdfConfig {
        max_document_frequency: 1.0,
    }));
    m.fit(&data).expect("fit");
    // idf(red) = idf(apple) = ln(4/3) + 1 = a; idf(green) = idf(car) = ln 2 + 1 = b.
    // v0 = (1, 1)/√2 over (red, apple); v1 = (b, a)/√(a² + b²) over (green, apple).
    let (a, b) = ((4f32 / 3.0).ln() + 1.0, 2f32.ln() + 1.0);
    let expected = a / (2f32.sqrt() * (a * a + b * b).sqrt());
    let s = scores(&m, None, &[0]);
    assert!((s[0] - 1.0).abs() < CLOSE);
    assert!(
        (s[1] - expected).abs() < CLOSE && (s[2] - expected).abs() < CLOSE,
        "{s:?}"
    );
}

#[test]
fn session_knn_votes_by_hand() {
    // Sessions {0,1}, {0,2}, {3,4} (source session ids); the current session is [0].
    let mk = |item, t, session| Interaction {
        session,
        ..ev(0, item, t, EventKind::Click, 0.0)
    };
    let log = EventLog::from_events(
        vec![
            mk(0, 0, 1),
            mk(1, 1, 1),
            mk(0, 2, 2),
            mk(2, 3, 2),
            mk(3, 4, 3),
            mk(4, 5, 3),
        ],
        1,
        5,
    );
    let data = TrainDataBuilder::new().build(&log);
    let mut m = Model::build(&ModelConfig::default_for("sknn").expect("known"));
    m.fit(&data).expect("fit");
    // Both sessions with item 0 have similarity 1 (the last item weighs 1) and vote.
    assert_eq!(scores(&m, None, &[0]), vec![2.0, 1.0, 1.0, 0.0, 0.0]);
    // With [3, 0]: item 3 weighs 1/2 and item 0 weighs 1.
    assert_eq!(scores(&m, None, &[3, 0]), vec![2.0, 1.0, 1.0, 0.5, 0.5]);
}

#[test]
fn hybrid_scales_and_weights_components() {
    let data = views(3, &[(0, &[0, 1]), (1, &[0]), (2, &[0, 2])]);
    let mut m = Model::build(&ModelConfig::Hybrid(aisle_models::HybridConfig {
        components: vec![aisle_models::HybridComponent {
            model: "pop".into(),
            weight: 2.0,
        }],
    }));
    m.fit(&data).expect("fit");
    // Popularity 3, 1, 1 scaled to [0, 1] is 1, 0, 0; times 2.
    assert_eq!(scores(&m, None, &[]), vec![2.0, 0.0, 0.0]);
}

#[test]
fn puresvd_projects_onto_the_top_singular_vector() {
    // Every user has items 0 and 1: the top right singular vector is (1, 1, 0)/√2, so the
    // history [0] scores v0 · v = (½, ½, 0).
    let data = views(3, &[(0, &[0, 1]), (1, &[0, 1]), (2, &[0, 1])]);
    let mut m = Model::build(&ModelConfig::PureSvd(aisle_models::PureSvdConfig {
        factors: 1,
        ..Default::default()
    }));
    m.fit(&data).expect("fit");
    let s = scores(&m, None, &[0]);
    assert!(
        (s[0] - 0.5).abs() < 1e-4 && (s[1] - 0.5).abs() < 1e-4 && s[2].abs() < 1e-4,
        "{s:?}"
    );
}

#[test]
fn als_fold_in_solves_the_normal_equations() {
    // With 2 factors the fold-in's CG steps solve the 2×2 system exactly:
    // (YᵀY + λ(1 + |h|) I + Σ_h (c − 1) y yᵀ) x = Σ_h c y, with c = 1 + α.
    let data = planted_blocks();
    let config = aisle_models::AlsConfig {
        factors: 2,
        ..Default::default()
    };
    let (reg, c) = (config.regularization, 1.0 + config.alpha);
    let mut m = aisle_models::Als::new(config);
    m.fit(&data).expect("fit");
    let y = m.item_factors();
    let history = [3u32, 12];
    let mut a = [[0f64; 2]; 2];
    let mut b = [0f64; 2];
    for i in 0..20 {
        let yi = [f64::from(y[i * 2]), f64::from(y[i * 2 + 1])];
        let extra = if history.contains(&(i as u32)) {
            f64::from(c) - 1.0
        } else {
            0.0
        };
        for r in 0..2 {
            for s in 0..2 {
                a[r][s] += (1.0 + extra) * yi[r] * yi[s];
            }
            if extra > 0.0 {
                b[r] += f64::from(c) * yi[r];
            }
        }
    }
    // Frequency-scaled regularisation: λ (1 + |history|).
    let lambda = f64::from(reg) * (1.0 + history.len() as f64);
    a[0][0] += lambda;
    a[1][1] += lambda;
    let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
    let x = [
        (b[0] * a[1][1] - b[1] * a[0][1]) / det,
        (a[0][0] * b[1] - a[1][0] * b[0]) / det,
    ];
    let s = scores(&m, None, &history);
    for i in 0..20 {
        let expected = x[0] * f64::from(y[i * 2]) + x[1] * f64::from(y[i * 2 + 1]);
        assert!(
            (f64::from(s[i]) - expected).abs() < 1e-3 * (1.0 + expected.abs()),
            "item {i}: {} vs {expected}",
            s[i]
        );
    }
}

/// Runs `f` on a pool of `threads` threads.
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
        .install(f)
}

/// ALS fits the same model bit for bit on one, two or three threads: its parallel sums
/// (the Gramian over thousands of item rows) associate in a fixed order.
#[test]
fn als_is_the_same_for_any_thread_count() {
    // 3,000 users and 6,000 items, so that the item Gramian sums several blocks of rows;
    // the views come from a fixed linear congruential sequence.
    let (n_users, n_items) = (3_000u32, 6_000u32);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |m: u32| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % u64::from(m)) as u32
    };
    let mut events = Vec::new();
    for u in 0..n_users {
        for step in 0..12 {
            // Half the views from a popular head, so the factors are not noise.
            let item = if step % 2 == 0 {
                next(200)
            } else {
                next(n_items)
            };
            events.push(ev(u, item, i64::from(step) * DAY, EventKind::View, 0.0));
        }
    }
    let data = TrainDataBuilder::new().build(&EventLog::from_events(
        events,
        n_users as usize,
        n_items as usize,
    ));
    let fit_on = |threads: usize| {
        on_threads(threads, || {
            let mut m = aisle_models::Als::new(aisle_models::AlsConfig {
                factors: 16,
                iterations: 3,
                ..Default::default()
            });
            m.fit(&data).expect("fit");
            (m.user_factors().to_vec(), m.item_factors().to_vec())
        })
    };
    let one = fit_on(1);
    assert!(one.1.iter().any(|&x| x != 0.0), "the fit learned something");
    assert!(one == fit_on(2), "two threads fit the one-thread model");
    assert!(one == fit_on(3), "three threads fit the one-thread model");
}

/// BPR is parallel and still deterministic: with a fixed seed and thread count two fits
/// score every item identically, on two threads as on one; and two threads learn the
/// planted blocks as well as one.
#[test]
fn bpr_is_deterministic_for_a_seed_and_a_thread_count() {
    let data = planted_blocks();
    let fit_on = |threads: usize| {
        on_threads(threads, || {
            let mut m = aisle_models::Bpr::new(aisle_models::BprConfig {
                factors: 8,
                epochs: 30,
                ..Default::default()
            });
            m.fit(&data).expect("fit");
            (0..40u32)
                .flat_map(|u| {
                    let query = Query {
                        user: Some(u),
                        ..Query::default()
                    };
                    let mut scores = vec![0f32; 20];
                    m.score(&query, &mut scores);
                    scores
                })
                .collect::<Vec<f32>>()
        })
    };
    let (one, one_again) = (fit_on(1), fit_on(1));
    let (two, two_again) = (fit_on(2), fit_on(2));
    assert_eq!(one, one_again, "one thread: the same seed, the same model");
    assert_eq!(two, two_again, "two threads: the same seed, the same model");
    assert_ne!(one, two, "two threads deal the work differently");
    // Each user's own block outscores the other block, on two threads as on one.
    for scores in [&one, &two] {
        let mut right = 0;
        for u in 0..40usize {
            let row = &scores[u * 20..(u + 1) * 20];
            let (own, other) = if u < 20 {
                (0..10, 10..20)
            } else {
                (10..20, 0..10)
            };
            let mean = |r: std::ops::Range<usize>| row[r].iter().sum::<f32>() / 10.0;
            right += usize::from(mean(own) > mean(other));
        }
        assert_eq!(right, 40, "every user prefers their own block");
    }
}

#[test]
fn bpr_loss_falls() {
    let data = planted_blocks();
    let mut m = aisle_models::Bpr::new(aisle_models::BprConfig {
        factors: 8,
        epochs: 30,
        ..Default::default()
    });
    let report = m.fit(&data).expect("fit");
    let curve = report.loss_curve;
    assert_eq!(curve.len(), 30);
    assert!(
        curve[29] < 0.7 * curve[0],
        "loss {} → {}",
        curve[0],
        curve[29]
    );
}
