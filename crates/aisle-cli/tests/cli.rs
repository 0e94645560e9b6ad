//! The `aisle` binary end to end, on the bundled sample.

mod common;

use common::{aisle, dir_arg, stderr, stdout};

#[test]
fn quickstart_imports_the_sample_and_prints_its_stats() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = dir_arg(&tmp.path().join("qs"));
    let out = aisle(&["quickstart", "--data-dir", &data, "--no-serve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("49,688 products; 593 users; 150,000 order lines"),
        "{text}"
    );
    // Running it again starts afresh rather than adding to the old store.
    let again = aisle(&["quickstart", "--data-dir", &data, "--no-serve"]);
    assert!(
        stdout(&again).contains("300,000 events added, 0 already stored"),
        "{}",
        stdout(&again)
    );

    let json = aisle(&["stats", "--data-dir", &data, "--json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let stats: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("stats --json is JSON");
    assert_eq!(stats["users"], 593);
    assert_eq!(stats["items"], 49_688);
    assert_eq!(stats["events"], 300_000);
    assert_eq!(stats["sessions"], 15_183);
    for key in [
        "events_by_kind",
        "time_span",
        "sparsity",
        "long_tail",
        "events_per_user",
        "events_per_session",
    ] {
        assert!(!stats[key].is_null(), "stats --json has {key}");
    }
    let purchases = stats["events_by_kind"]
        .as_array()
        .expect("array")
        .iter()
        .find(|k| k["kind"] == "purchase")
        .expect("purchase row");
    assert_eq!(purchases["count"], 150_000);
}

#[test]
fn import_reports_bad_rows_by_file_and_line_and_keeps_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = dir_arg(&tmp.path().join("store"));
    let good = tmp.path().join("good.csv");
    std::fs::write(&good, "user,item,event,ts\nu1,i1,view,1000\n").expect("write");
    let out = aisle(&[
        "import",
        "--data-dir",
        &data,
        "--format",
        "csv",
        &dir_arg(&good),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 events added"), "{}", stdout(&out));

    // The same file again adds nothing.
    let out = aisle(&[
        "import",
        "--data-dir",
        &data,
        "--format",
        "csv",
        "--json",
        &dir_arg(&good),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (
            report["events_added"].as_u64(),
            report["events_duplicate"].as_u64()
        ),
        (Some(0), Some(1))
    );

    let bad = tmp.path().join("bad.csv");
    std::fs::write(
        &bad,
        "user,item,event,ts\nu2,i2,view,2000\nu3,i3,view,noon\n",
    )
    .expect("write");
    let out = aisle(&[
        "import",
        "--data-dir",
        &data,
        "--format",
        "csv",
        "--strict",
        &dir_arg(&bad),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:3: field `ts`", bad.display())),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");

    let stats = aisle(&["stats", "--data-dir", &data, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("json");
    assert_eq!(
        stats["events"], 1,
        "the rejected import left nothing behind"
    );
}

#[test]
fn helpful_errors_for_common_mistakes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = aisle(&["stats", "--data-dir", &dir_arg(&tmp.path().join("nothing"))]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("holds no aisle store yet"),
        "{}",
        stderr(&out)
    );

    let out = aisle(&[
        "import",
        "--data-dir",
        &dir_arg(tmp.path()),
        "--format",
        "xlsx",
        "x.xlsx",
    ]);
    assert!(
        stderr(&out).contains("unknown format \"xlsx\""),
        "{}",
        stderr(&out)
    );

    let out = aisle(&[
        "import",
        "--data-dir",
        &dir_arg(tmp.path()),
        "--format",
        "csv",
        "--map",
        "usr=a",
        "x.csv",
    ]);
    assert!(
        stderr(&out).contains("unknown field `usr`"),
        "{}",
        stderr(&out)
    );

    for command in ["import", "stats", "quickstart", "serve"] {
        let out = aisle(&[command, "--help"]);
        assert!(
            out.status.success() && stdout(&out).contains("Usage"),
            "{command} --help"
        );
    }
}

#[test]
fn eval_prints_a_leaderboard_and_writes_json_and_html() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = dir_arg(&tmp.path().join("qs"));
    let out = aisle(&["quickstart", "--data-dir", &data, "--no-serve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json_path = tmp.path().join("lb.json");
    let html_path = tmp.path().join("lb.html");
    let out = aisle(&[
        "eval",
        "--data-dir",
        &data,
        "--protocol",
        "temporal",
        "--models",
        "pop,itemknn,sr",
        "--json",
        &dir_arg(&json_path),
        "--report",
        &dir_arg(&html_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("itemknn"), "{}", stdout(&out));
    let board: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("json")).expect("valid JSON");
    let models = board["models"].as_array().expect("models");
    assert_eq!(models.len(), 3);
    for m in models {
        for key in [
            "ndcg@10",
            "recall@10",
            "recall@20",
            "mrr@20",
            "hr@5",
            "coverage@10",
        ] {
            let v = m["metrics"][key].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&v), "{} {key} = {v}", m["model"]);
        }
        assert!(m["fit_seconds"].as_f64().is_some());
    }
    // On grocery data, neighbours of what a user bought beat global popularity.
    let ndcg = |name: &str| {
        models.iter().find(|m| m["model"] == name).expect("row")["metrics"]["ndcg@10"]
            .as_f64()
            .expect("number")
    };
    assert!(
        ndcg("itemknn") > ndcg("pop"),
        "itemknn {} vs pop {}",
        ndcg("itemknn"),
        ndcg("pop")
    );
    let html = std::fs::read_to_string(&html_path).expect("html");
    assert!(html.contains("<svg") && html.contains("ndcg@10"));

    let out = aisle(&[
        "eval",
        "--data-dir",
        &data,
        "--protocol",
        "loo",
        "--models",
        "sasrec",
    ]);
    assert!(
        stderr(&out).contains("unknown model \"sasrec\""),
        "{}",
        stderr(&out)
    );
    let out = aisle(&[
        "eval",
        "--data-dir",
        &data,
        "--protocol",
        "loo",
        "--models",
        "transformer",
        "--config",
        r#"{"model":"transformer","dim":"wide"}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a model config") && stderr(&out).contains("expected usize"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn train_saves_a_model_that_recommend_uses() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = dir_arg(&tmp.path().join("qs"));
    assert!(
        aisle(&["quickstart", "--data-dir", &data, "--no-serve"])
            .status
            .success()
    );
    let out = aisle(&[
        "recommend",
        "--data-dir",
        &data,
        "--model",
        "rp3beta",
        "--user",
        "1",
    ]);
    assert!(
        stderr(&out).contains("run aisle train --model rp3beta first"),
        "{}",
        stderr(&out)
    );
    let out = aisle(&["train", "--data-dir", &data, "--model", "rp3beta"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(tmp.path().join("qs/models/rp3beta.model").is_file());

    let out = aisle(&[
        "recommend",
        "--data-dir",
        &data,
        "--model",
        "rp3beta",
        "--items",
        "196,14084",
        "-k",
        "5",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["item"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(
        !ids.contains(&"196") && !ids.contains(&"14084"),
        "the session's own items are not recommended back"
    );

    let out = aisle(&[
        "recommend",
        "--data-dir",
        &data,
        "--model",
        "rp3beta",
        "--user",
        "1",
        "--category",
        "dairy eggs",
        "--json",
    ]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for row in list.as_array().expect("array") {
        assert_eq!(
            row["category"][0], "dairy eggs",
            "the category filter holds: {row}"
        );
    }
}

#[test]
fn search_tolerates_typos_filters_and_logs_each_search() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = dir_arg(&tmp.path().join("shop"));
    let sample = aisle_testkit::bundled_sample().display().to_string();
    let out = aisle(&[
        "import",
        "--data-dir",
        &data,
        "--format",
        "instacart",
        &sample,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let search = |extra: &[&str]| {
        let mut args = vec!["search", "--data-dir", &data, "--no-encoder"];
        args.extend_from_slice(extra);
        aisle(&args)
    };
    let out = search(&["choclate", "--json", "--limit", "5", "--user", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let hits = json["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 5);
    for hit in hits {
        let title = hit["title"].as_str().expect("title").to_lowercase();
        assert!(title.contains("chocolate"), "{title}");
        assert!(!hit["why"].as_array().expect("why").is_empty());
    }
    assert_eq!(json["mode"], "lexical");
    assert!(
        json["notes"][0]
            .as_str()
            .unwrap_or("")
            .contains("lexical only"),
        "says once that search is lexical: {}",
        json["notes"]
    );

    let out = search(&[
        "yogurt",
        "--filter",
        "category=dairy eggs/yogurt",
        "--json",
        "--no-log",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["facets"]["departments"][0][0], "dairy eggs");
    assert_eq!(json["facets"]["departments"][0][1], json["total"]);

    let bad = search(&["yogurt", "--filter", "price<cheap"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("not a number"), "{}", stderr(&bad));
    let unknown = search(&["yogurt", "--user", "nobody"]);
    assert!(
        stderr(&unknown).contains("unknown user \"nobody\""),
        "{}",
        stderr(&unknown)
    );

    // The behaviour overview: funnel, cohorts, RFM, rules, as JSON and an HTML report.
    let json_path = tmp.path().join("analytics.json");
    let html_path = tmp.path().join("analytics.html");
    let out = aisle(&[
        "analyze",
        "--data-dir",
        &data,
        "--json",
        &dir_arg(&json_path),
        "--report",
        &dir_arg(&html_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("RFM segments (593 customers)"),
        "{}",
        stdout(&out)
    );
    let overview: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("json written"))
            .expect("JSON");
    // Every one of the 15,183 orders adds to cart and buys.
    assert_eq!(overview["funnel"][0]["count"], 15_183);
    assert_eq!(overview["funnel"][1]["count"], 15_183);
    let html = std::fs::read_to_string(&html_path).expect("report written");
    assert!(html.contains("<svg") && html.contains("Top basket rules"));

    // The first search was logged (the --no-log one and the failed ones were not).
    let stats = aisle(&["stats", "--data-dir", &data, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("JSON");
    let searches = stats["events_by_kind"]
        .as_array()
        .expect("array")
        .iter()
        .find(|k| k["kind"] == "search")
        .expect("a search row");
    assert_eq!(searches["count"], 1);
}

#[test]
fn analyze_rules_and_predict_churn_print_the_reference_figures_as_json() {
    let (Some(groceries), Some(cdnow)) = (
        aisle_testkit::shared_dataset("groceries"),
        aisle_testkit::shared_dataset("cdnow"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let g = dir_arg(&tmp.path().join("groceries"));
    let file = groceries.join("groceries.csv").display().to_string();
    assert!(
        aisle(&["import", "--data-dir", &g, "--format", "groceries", &file])
            .status
            .success()
    );
    let out = aisle(&[
        "analyze",
        "rules",
        "--data-dir",
        &g,
        "--min-support",
        "0.001",
        "--min-confidence",
        "0.5",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rules: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rules["count"], 5_668);
    assert_eq!(rules["rules"][0]["consequent"], "hamburger meat");
    for key in ["antecedent", "consequent", "support", "confidence", "lift"] {
        assert!(!rules["rules"][0][key].is_null(), "{key}");
    }

    let c = dir_arg(&tmp.path().join("cdnow"));
    let file = cdnow.join("CDNOW_sample.txt").display().to_string();
    assert!(
        aisle(&["import", "--data-dir", &c, "--format", "cdnow", &file])
            .status
            .success()
    );
    let out = aisle(&[
        "predict",
        "churn",
        "--data-dir",
        &c,
        "--model",
        "bgnbd",
        "--calibration-end",
        "1997-09-30",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fit: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for (key, want) in [("r", 0.243), ("alpha", 4.414), ("a", 0.793), ("b", 2.426)] {
        let got = fit[key].as_f64().expect(key);
        assert!((got - want).abs() < 0.005, "{key}: {got}");
    }
    let bad = aisle(&[
        "predict",
        "churn",
        "--data-dir",
        &c,
        "--calibration-end",
        "30/09/1997",
    ]);
    assert!(
        stderr(&bad).contains("expected a date as YYYY-MM-DD"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn predictions_portraits_and_recommendations_explain_themselves() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = dir_arg(&tmp.path().join("qs"));
    let out = aisle(&["quickstart", "--data-dir", &data, "--no-serve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = |args: &[&str]| -> serde_json::Value {
        let out = aisle(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_str(&stdout(&out)).expect("JSON")
    };

    let portrait = json(&[
        "analyze",
        "portrait",
        "--data-dir",
        &data,
        "--user",
        "1",
        "--json",
    ]);
    assert_eq!(portrait["orders"], 10, "{portrait}");
    let favourite: Vec<String> = portrait["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .map(|c| c[0].as_str().expect("name").to_string())
        .collect();

    let purchase = json(&[
        "predict",
        "purchase",
        "--data-dir",
        &data,
        "--user",
        "1",
        "--top",
        "3",
        "--explain",
        "--json",
    ]);
    let products = purchase["products"].as_array().expect("products");
    assert_eq!(products.len(), 3);
    let p: Vec<f64> = products
        .iter()
        .map(|p| p["probability"].as_f64().expect("probability"))
        .collect();
    assert!(
        p.windows(2).all(|w| w[0] >= w[1]) && p[2] > 0.0 && p[0] < 1.0,
        "{p:?}"
    );
    assert_eq!(products[0]["because"].as_array().expect("because").len(), 4);
    // The departments the model expects next are among the shopper's usual ones.
    for d in purchase["departments"].as_array().expect("departments") {
        let name = d["department"].as_str().expect("name");
        assert!(
            favourite.iter().any(|f| f == name),
            "{name} not in {favourite:?}"
        );
    }

    let promo = json(&[
        "predict",
        "promo",
        "--data-dir",
        &data,
        "--category",
        "yogurt",
        "--k",
        "50",
        "--json",
    ]);
    let targets = promo["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 20);
    let expected = promo["expected_buyers_in_top_k"]
        .as_f64()
        .expect("expected");
    // The list is best first, and the expected buyers among the top 50 are the 20 shown
    // plus at most 30 more, each no likelier than the 20th.
    let p: Vec<f64> = targets
        .iter()
        .map(|t| t["probability"].as_f64().expect("p"))
        .collect();
    assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
    let shown: f64 = p.iter().sum();
    assert!(
        expected >= shown - 1e-6 && expected <= shown + 30.0 * p[19] + 1e-6,
        "expected {expected}, shown {shown}, 20th {}",
        p[19]
    );
    let err = aisle(&[
        "predict",
        "promo",
        "--data-dir",
        &data,
        "--category",
        "no such aisle",
    ]);
    assert!(stderr(&err).contains("no item has it"), "{}", stderr(&err));

    let out = aisle(&["train", "--data-dir", &data, "--model", "itemknn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let recs = json(&[
        "recommend",
        "--data-dir",
        &data,
        "--model",
        "itemknn",
        "--user",
        "1",
        "-k",
        "5",
        "--exclude-bought",
        "--explain",
        "--json",
    ]);
    for rec in recs.as_array().expect("list") {
        let because = rec["because"].as_array().expect("because");
        assert!(
            !because.is_empty(),
            "item-kNN picks only co-bought items: {rec}"
        );
        assert!(because[0]["shared_users"].as_u64().expect("count") >= 1);
    }
}
