//! The product-search protocol on the bundled Instacart sample, and personalised re-ranking
//! learned from it beating the text-only ranking, and a popularity re-ranking of the same
//! candidates, on held-out orders (each user's last, never seen in training).

use aisle_eval::product_search::{
    CaseContext, category_query, popularity_features, ranker_queries, run_cases, score_lists,
    search_split, split_by_user,
};
use aisle_features::EventLog;
use aisle_models::{Model, ModelConfig, Recommender, TrainDataBuilder};
use aisle_search::{
    EngineConfig, FieldBoosts, LearnedRanker, RankerConfig, RankingContext, SearchEngine,
    SearchMode, SearchRequest, TextIndex, load_catalogue,
};

#[test]
fn personalised_reranking_beats_text_ranking_on_later_orders() {
    let store = aisle_import::instacart_in_memory(&aisle_testkit::bundled_sample()).unwrap();
    let catalogue = load_catalogue(&store).unwrap();
    let log = EventLog::load(&store).unwrap();
    let split = search_split(&log, &catalogue).unwrap();
    assert!(split.test.len() > 4000 && split.train.len() > 4000);
    for case in split.test.iter().chain(&split.train) {
        assert!(
            case.history.iter().all(|h| h.2 < case.at_ms),
            "only earlier behaviour"
        );
        assert!(!case.relevant.is_empty());
        let item = catalogue[case.relevant[0] as usize].as_ref().unwrap();
        assert_eq!(category_query(item).as_deref(), Some(case.query.as_str()));
    }
    assert!(
        split.before_test.len() < log.len() && split.before_train.len() < split.before_test.len()
    );
    // Held out: every search the ranker learns from comes from an order before the same
    // user's test order (or placed the same day: the sample's times are days), and no event
    // from a test order is visible when training.
    let test_start: std::collections::HashMap<u32, i64> =
        split.test.iter().map(|c| (c.user, c.at_ms)).collect();
    for case in &split.train {
        assert!(case.at_ms <= test_start[&case.user], "user {}", case.user);
    }
    assert!(
        split
            .before_train
            .events()
            .iter()
            .all(|e| test_start.get(&e.user).is_none_or(|&t| e.timestamp_ms < t))
    );

    let mut text = TextIndex::in_memory().unwrap();
    text.set_boosts(FieldBoosts {
        category: 0.0,
        ..FieldBoosts::default()
    });
    let mut engine = SearchEngine::new(
        text,
        EngineConfig {
            embed_category: false,
            ..EngineConfig::default()
        },
    );
    engine.sync_catalogue(catalogue.clone(), &|_| {}).unwrap();

    let fit = |log: &EventLog| {
        let mut model = Model::build(&ModelConfig::default_for("itemknn").unwrap());
        model
            .fit(&TrainDataBuilder::new().items(catalogue.clone()).build(log))
            .unwrap();
        model
    };
    // A small ranker on a share of the training searches keeps the test quick.
    let (pop, recent) = popularity_features(&split.before_train);
    engine.set_popularity(pop, recent);
    let recommender = fit(&split.before_train);
    let train_cases = &split.train[..1500];
    let contexts: Vec<CaseContext> = train_cases
        .iter()
        .map(|c| CaseContext::new(c, &engine, Some(&recommender as &dyn Recommender)))
        .collect();
    let defaults = RankerConfig::default();
    let config = RankerConfig {
        depth: 50,
        gbdt: aisle_trees::GbdtConfig {
            trees: 60,
            ..defaults.gbdt
        },
    };
    let queries = ranker_queries(
        &engine,
        train_cases,
        &contexts,
        SearchMode::Lexical,
        config.depth,
    )
    .unwrap();
    let (train, valid) = split_by_user(queries, 0.2);
    let ranker = LearnedRanker::train(&config, &train, &valid).unwrap();
    engine.set_ranker(Some(ranker));

    let (pop, recent) = popularity_features(&split.before_test);
    engine.set_popularity(pop.clone(), recent);
    let recommender = fit(&split.before_test);
    let test_cases = &split.test[..1500];
    let contexts: Vec<CaseContext> = test_cases
        .iter()
        .map(|c| CaseContext::new(c, &engine, Some(&recommender as &dyn Recommender)))
        .collect();
    let plain = run_cases(&engine, test_cases, &contexts, SearchMode::Lexical, false).unwrap();
    let personal = run_cases(&engine, test_cases, &contexts, SearchMode::Lexical, true).unwrap();
    // The non-personalised re-ranking: the same lexical candidates (the ranker's depth),
    // best sellers first, from the purchases before the test orders.
    let popular: Vec<Vec<u32>> = test_cases
        .iter()
        .map(|case| {
            let request = SearchRequest {
                query: case.query.clone(),
                mode: Some(SearchMode::Lexical),
                typing: false,
                personalise: false,
                limit: config.depth,
                ..SearchRequest::default()
            };
            let mut hits: Vec<u32> = engine
                .search(&request, &RankingContext::default())
                .unwrap()
                .hits
                .iter()
                .map(|h| h.item.0)
                .collect();
            // Stable: equally popular items keep their lexical order.
            hits.sort_by(|a, b| pop[*b as usize].total_cmp(&pop[*a as usize]));
            hits.truncate(10);
            hits
        })
        .collect();
    let plain = score_lists("bm25", test_cases, &plain);
    let personal = score_lists("bm25 + lambdamart", test_cases, &personal);
    let popular = score_lists("bm25 by popularity", test_cases, &popular);
    // Measured here (lexical retrieval, a 60-tree ranker on 1500 training searches, the
    // first 1500 test searches): NDCG@10 0.242 personalised, 0.0055 BM25 alone, 0.025 BM25
    // candidates by popularity. The published 0.42 (bench/results/search.md) re-ranks hybrid
    // candidates (MiniLM + BM25), which this test cannot load; lexical candidates miss more of
    // the bought products, so the bar is set from this pipeline's own measurement.
    let report =
        format!("personalised {personal:?}, text only {plain:?}, by popularity {popular:?}");
    // The measured values, for `--nocapture` (the note quotes them).
    eprintln!("{report}");
    assert!(personal.ndcg_10 > 0.2, "{report}");
    assert!(personal.ndcg_10 > plain.ndcg_10 + 0.18, "{report}");
    assert!(personal.ndcg_10 > popular.ndcg_10 + 0.15, "{report}");
    assert!(personal.recall_10 > plain.recall_10 + 0.2, "{report}");
}
