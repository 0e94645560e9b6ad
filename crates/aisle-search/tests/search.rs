//! The search pipeline on the real Instacart catalogue and on small hand-counted fixtures.

use aisle_core::{Item, ItemId};
use aisle_search::{
    EngineConfig, Filter, RankingContext, SearchEngine, SearchMode, SearchRequest, TextIndex,
    load_catalogue,
};

fn instacart_engine() -> SearchEngine {
    let store = aisle_import::instacart_in_memory(&aisle_testkit::bundled_sample())
        .expect("the bundled sample imports");
    let catalogue = load_catalogue(&store).expect("catalogue");
    let mut engine = SearchEngine::new(
        TextIndex::in_memory().expect("index"),
        EngineConfig::default(),
    );
    engine.sync_catalogue(catalogue, &|_| {}).expect("indexing");
    engine
}

fn titles(engine: &SearchEngine, request: &SearchRequest) -> Vec<String> {
    engine
        .search(request, &RankingContext::default())
        .expect("search")
        .hits
        .iter()
        .map(|h| {
            engine
                .item(h.item)
                .expect("hit is in the catalogue")
                .title
                .clone()
        })
        .collect()
}

fn item(id: &str, title: &str, category: &[&str], brand: Option<&str>, price: Option<f64>) -> Item {
    Item {
        title: title.into(),
        category: category.iter().map(|s| s.to_string()).collect(),
        brand: brand.map(String::from),
        price,
        ..Item::new(id)
    }
}

fn small_engine(items: Vec<Item>) -> SearchEngine {
    let mut engine = SearchEngine::new(
        TextIndex::in_memory().expect("index"),
        EngineConfig::default(),
    );
    engine
        .sync_catalogue(items.into_iter().map(Some).collect(), &|_| {})
        .expect("indexing");
    engine
}

#[test]
fn typos_and_unfinished_words_find_chocolate_on_the_real_catalogue() {
    let engine = instacart_engine();
    for query in ["chocolat", "choclate", "Chocolate"] {
        let mut request = SearchRequest::new(query);
        request.limit = 10;
        let found = titles(&engine, &request);
        assert_eq!(found.len(), 10, "{query}: {found:?}");
        assert!(
            found.iter().all(|t| t.to_lowercase().contains("chocolate")),
            "{query}: every top-10 title contains \"chocolate\": {found:?}"
        );
    }
    // Without the prefix rule a finished word "chocolat" still reaches chocolate by one edit.
    let mut finished = SearchRequest::new("chocolat");
    finished.typing = false;
    assert!(
        titles(&engine, &finished)[0]
            .to_lowercase()
            .contains("chocolate")
    );
    // Stemming: a plural query finds singular titles.
    assert!(
        titles(&engine, &SearchRequest::new("bananas"))
            .iter()
            .any(|t| t == "Banana")
    );
}

#[test]
fn a_chinese_query_finds_a_chinese_title() {
    let engine = small_engine(vec![
        item(
            "1",
            "有机全脂牛奶 1升",
            &["乳制品", "牛奶"],
            Some("蒙牛"),
            Some(12.5),
        ),
        item(
            "2",
            "草莓味酸奶",
            &["乳制品", "酸奶"],
            Some("伊利"),
            Some(6.0),
        ),
        item(
            "3",
            "Organic Whole Milk",
            &["dairy eggs", "milk"],
            None,
            Some(4.0),
        ),
        item("4", "巧克力饼干", &["零食", "饼干"], None, Some(9.9)),
    ]);
    let hits = |q: &str| titles(&engine, &SearchRequest::new(q));
    assert_eq!(
        hits("牛奶")[0],
        "有机全脂牛奶 1升",
        "a word inside a longer title"
    );
    assert_eq!(hits("全脂牛奶")[0], "有机全脂牛奶 1升");
    assert_eq!(hits("酸奶"), ["草莓味酸奶"]);
    assert_eq!(hits("巧克力"), ["巧克力饼干"]);
    assert_eq!(hits("蒙牛"), ["有机全脂牛奶 1升"], "brand field");
    assert_eq!(hits("milk"), ["Organic Whole Milk"]);
}

fn fixture() -> Vec<Item> {
    vec![
        item(
            "a",
            "Dark Chocolate Bar",
            &["snacks", "candy chocolate"],
            Some("Lindt"),
            Some(3.5),
        ),
        item(
            "b",
            "Milk Chocolate Bar",
            &["snacks", "candy chocolate"],
            Some("Hershey"),
            Some(1.5),
        ),
        item(
            "c",
            "Chocolate Chip Cookies",
            &["snacks", "cookies cakes"],
            Some("Tate's"),
            Some(5.0),
        ),
        item(
            "d",
            "Chocolate Milk",
            &["dairy eggs", "milk"],
            Some("Horizon"),
            Some(2.5),
        ),
        item(
            "e",
            "Chocolate Ice Cream",
            &["frozen", "ice cream"],
            Some("Haagen-Dazs"),
            None,
        ),
        item(
            "f",
            "Vanilla Ice Cream",
            &["frozen", "ice cream"],
            Some("Haagen-Dazs"),
            Some(5.5),
        ),
        item(
            "g",
            "Dark Chocolate Almonds",
            &["snacks", "nuts seeds"],
            Some("Lindt"),
            Some(7.0),
        ),
    ]
}

#[test]
fn filters_and_facet_counts_are_exact() {
    let engine = small_engine(fixture());
    let ctx = RankingContext::default();
    let mut request = SearchRequest::new("chocolate");
    request.limit = 100;
    let all = engine.search(&request, &ctx).unwrap();
    // Six titles contain "chocolate"; "Vanilla Ice Cream" does not.
    assert_eq!(all.total, 6);
    assert_eq!(
        all.facets.departments,
        [
            ("snacks".to_string(), 4),
            ("dairy eggs".to_string(), 1),
            ("frozen".to_string(), 1)
        ]
    );
    assert_eq!(all.facets.brands[0], ("Lindt".to_string(), 2));
    assert_eq!(all.facets.brands.iter().map(|b| b.1).sum::<usize>(), 6);
    // Prices 3.5, 1.5, 5.0, 2.5, 7.0 (and one unpriced item, not counted).
    let bands: std::collections::HashMap<_, _> = all.facets.prices.iter().cloned().collect();
    assert_eq!(bands["2-5"], 2);
    assert_eq!(bands["1-2"], 1);
    assert_eq!(bands["5-10"], 2);
    assert_eq!(bands.values().sum::<usize>(), 5);

    let filtered = |exprs: &[&str]| {
        let mut r = request.clone();
        r.filter = Filter::parse_all(exprs).unwrap();
        let response = engine.search(&r, &ctx).unwrap();
        let mut ids: Vec<String> = response
            .hits
            .iter()
            .map(|h| engine.item(h.item).unwrap().external_id.clone())
            .collect();
        ids.sort();
        (ids, response.total)
    };
    assert_eq!(filtered(&["category=snacks"]).0, ["a", "b", "c", "g"]);
    assert_eq!(filtered(&["category=snacks/candy chocolate"]).0, ["a", "b"]);
    assert_eq!(filtered(&["brand=lindt"]).0, ["a", "g"]);
    assert_eq!(filtered(&["price<3"]).0, ["b", "d"]);
    assert_eq!(filtered(&["price=2.5..5"]).0, ["a", "c", "d"]);
    assert_eq!(
        filtered(&["category=snacks", "price>=5"]),
        (vec!["c".into(), "g".into()], 2)
    );
    assert_eq!(filtered(&["brand=Haagen-Dazs|Horizon"]).0, ["d", "e"]);
    // An empty query browses: every item passes, filters still apply.
    let mut browse = SearchRequest::new("");
    browse.filter = Filter::parse_all(&["category=frozen"]).unwrap();
    assert_eq!(engine.search(&browse, &ctx).unwrap().total, 2);
}

#[test]
fn facet_counts_agree_with_filtered_totals_on_the_real_catalogue() {
    let engine = instacart_engine();
    let ctx = RankingContext::default();
    let mut request = SearchRequest::new("organic yogurt");
    request.typing = false;
    let all = engine.search(&request, &ctx).unwrap();
    assert!(all.total > 100, "{}", all.total);
    assert_eq!(
        all.facets.departments.iter().map(|d| d.1).sum::<usize>(),
        all.total
    );
    for (department, count) in all.facets.departments.iter().take(4) {
        let mut r = request.clone();
        r.filter = Filter::parse_all(&[format!("category={department}")]).unwrap();
        let narrowed = engine.search(&r, &ctx).unwrap();
        assert_eq!(narrowed.total, *count, "{department}");
        assert!(
            narrowed
                .hits
                .iter()
                .all(|h| engine.item(h.item).unwrap().category[0] == *department)
        );
    }
}

#[test]
fn catalogue_changes_show_up_in_the_next_search() {
    let mut engine = small_engine(fixture());
    let find = |engine: &SearchEngine, q: &str| titles(engine, &SearchRequest::new(q));
    assert!(find(&engine, "zanzibar").is_empty());
    let new_id = ItemId(7);
    engine
        .upsert_items(vec![(
            new_id,
            item(
                "h",
                "Zanzibar Spice Tea",
                &["beverages", "tea"],
                None,
                Some(4.0),
            ),
        )])
        .unwrap();
    assert_eq!(find(&engine, "zanzibar"), ["Zanzibar Spice Tea"]);
    engine
        .upsert_items(vec![(
            new_id,
            item(
                "h",
                "Ceylon Black Tea",
                &["beverages", "tea"],
                None,
                Some(4.0),
            ),
        )])
        .unwrap();
    assert!(
        find(&engine, "zanzibar").is_empty(),
        "the old title is gone"
    );
    assert_eq!(find(&engine, "ceylon"), ["Ceylon Black Tea"]);
    engine.delete_items(&[new_id]).unwrap();
    assert!(find(&engine, "ceylon").is_empty());
    // sync_catalogue with a catalogue that lacks an item removes it too.
    let mut smaller = fixture();
    smaller.truncate(6);
    let (changed, removed) = engine
        .sync_catalogue(smaller.into_iter().map(Some).collect(), &|_| {})
        .unwrap();
    assert_eq!((changed, removed), (0, 1));
    assert!(find(&engine, "almonds").is_empty());
}

#[test]
fn synonyms_from_a_file_widen_the_query() {
    let mut text = TextIndex::in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synonyms.txt");
    std::fs::write(&path, "# shop words\nsoda, pop, soft drink\n").unwrap();
    text.set_synonyms(aisle_search::Synonyms::from_file(&path).unwrap());
    let mut engine = SearchEngine::new(text, EngineConfig::default());
    engine
        .sync_catalogue(
            vec![
                Some(item("1", "Cherry Soda", &["beverages"], None, None)),
                Some(item("2", "Lemon Soft Drink", &["beverages"], None, None)),
                Some(item("3", "Popcorn", &["snacks"], None, None)),
            ],
            &|_| {},
        )
        .unwrap();
    let mut request = SearchRequest::new("pop");
    request.typing = false;
    let mut found = titles(&engine, &request);
    found.sort();
    assert_eq!(found, ["Cherry Soda", "Lemon Soft Drink"]);
    std::fs::write(&path, "soda\n").unwrap();
    let err = aisle_search::Synonyms::from_file(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("synonyms.txt:1"), "{err}");
}

#[test]
fn semantic_mode_without_an_encoder_falls_back_and_says_so() {
    let engine = small_engine(fixture());
    let mut request = SearchRequest::new("chocolate");
    request.mode = Some(SearchMode::Hybrid);
    let response = engine.search(&request, &RankingContext::default()).unwrap();
    assert_eq!(response.mode, Some(SearchMode::Lexical));
    assert!(
        response.notes[0].contains("lexical only"),
        "{:?}",
        response.notes
    );
    assert!(!response.hits.is_empty());
}
