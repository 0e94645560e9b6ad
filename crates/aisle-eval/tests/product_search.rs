//! The product-search protocol on the bundled Instacart sample, and personalised re-ranking
//! learned from it beating the text-only ranking on held-out orders.

use aisle_eval::product_search::{
    CaseContext, category_query, popularity_features, ranker_queries, run_cases, score_lists,
    search_split, split_by_user,
};
use aisle_features::EventLog;
use aisle_models::{Model, ModelConfig, Recommender, TrainDataBuilder};
use aisle_search::{
    EngineConfig, FieldBoosts, LearnedRanker, RankerConfig, SearchEngine, SearchMode, TextIndex,
    load_catalogue,
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
        gbdt: aisle_models::GbdtConfig {
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
    engine.set_popularity(pop, recent);
    let recommender = fit(&split.before_test);
    let test_cases = &split.test[..1500];
    let contexts: Vec<CaseContext> = test_cases
        .iter()
        .map(|c| CaseContext::new(c, &engine, Some(&recommender as &dyn Recommender)))
        .collect();
    let plain = run_cases(&engine, test_cases, &contexts, SearchMode::Lexical, false).unwrap();
    let personal = run_cases(&engine, test_cases, &contexts, SearchMode::Lexical, true).unwrap();
    let plain = score_lists("bm25", test_cases, &plain);
    let personal = score_lists("bm25 + lambdamart", test_cases, &personal);
    assert!(
        personal.ndcg_10 > 0.1 && personal.ndcg_10 > 5.0 * plain.ndcg_10,
        "personalised {personal:?} vs text only {plain:?}"
    );
}
