//! The Rust MiniLM against sentence-transformers' output for the same sentences, stored in
//! tests/fixtures/minilm_reference.json by bench/minilm_reference.py.

use std::sync::Arc;

use aisle_core::Item;
use aisle_search::{
    EngineConfig, RankingContext, SearchEngine, SearchMode, SearchRequest, SentenceEncoder,
    TextEncoder, TextIndex, VectorIndex,
};

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

fn encoder() -> SentenceEncoder {
    SentenceEncoder::load(&aisle_testkit::encoder_dir()).expect("the encoder loads")
}

#[test]
fn embeddings_match_sentence_transformers_to_1e_4() {
    let reference: Reference = serde_json::from_str(include_str!("fixtures/minilm_reference.json"))
        .expect("fixture parses");
    let encoder = encoder();
    assert_eq!(encoder.dimension(), 384);
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    // One batch with padding, and one sentence at a time: both must match.
    let batched = encoder.encode(&texts).unwrap();
    for (case, vector) in reference.cases.iter().zip(&batched) {
        assert_eq!(
            encoder.token_ids(&case.text),
            case.token_ids,
            "tokens of {:?}",
            case.text
        );
        let single = encoder.encode(&[case.text.as_str()]).unwrap().remove(0);
        for (got, v) in [(vector, "batched"), (&single, "single")].map(|(g, s)| (g.clone(), s)) {
            let worst = got
                .iter()
                .zip(&case.embedding)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-4,
                "{v} {:?}: largest difference {worst}",
                case.text
            );
        }
    }
}

#[test]
fn semantic_search_finds_what_words_miss() {
    let titles = [
        ("Banana", "produce"),
        ("Organic Strawberries", "produce"),
        ("Honeycrisp Apple", "produce"),
        ("Dark Chocolate Bar", "snacks"),
        ("Paper Towels", "household"),
        ("Laundry Detergent", "household"),
    ];
    let mut engine = SearchEngine::new(
        TextIndex::in_memory().unwrap(),
        EngineConfig {
            embed_category: false,
            ..EngineConfig::default()
        },
    );
    engine
        .set_encoder(Arc::new(encoder()), VectorIndex::default())
        .unwrap();
    engine
        .sync_catalogue(
            titles
                .iter()
                .enumerate()
                .map(|(i, (t, c))| {
                    Some(Item {
                        title: t.to_string(),
                        category: vec![c.to_string()],
                        ..Item::new(i.to_string())
                    })
                })
                .collect(),
            &|_| {},
        )
        .unwrap();
    assert_eq!(engine.vectors().unwrap().len(), titles.len());
    let run = |mode| {
        let mut request = SearchRequest::new("fresh fruit");
        request.mode = Some(mode);
        request.limit = 3;
        let response = engine.search(&request, &RankingContext::default()).unwrap();
        response
            .hits
            .iter()
            .map(|h| engine.item(h.item).unwrap().category[0].clone())
            .collect::<Vec<_>>()
    };
    assert!(
        run(SearchMode::Lexical).is_empty(),
        "no title has the words"
    );
    assert_eq!(run(SearchMode::Semantic), ["produce", "produce", "produce"]);
    assert_eq!(run(SearchMode::Hybrid), ["produce", "produce", "produce"]);
}
