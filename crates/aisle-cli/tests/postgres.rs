//! The command line over PostgreSQL: the bundled sample imported into a database holds what
//! the embedded store holds, a second import of the same files adds nothing, and training,
//! evaluation and search read it like the embedded store.

use std::process::{Command, Output};

use aisle_store::testing::FreshDatabase;

fn aisle(args: &[&str], database: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aisle"));
    c.args(args).env_remove("AISLE_DATABASE_URL");
    if let Some(url) = database {
        c.env("AISLE_DATABASE_URL", url);
    }
    let out = c.output().expect("run aisle");
    assert!(
        out.status.success(),
        "aisle {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stats(data_dir: &str, database: Option<&str>) -> serde_json::Value {
    let out = aisle(&["stats", "--json", "--data-dir", data_dir], database);
    serde_json::from_slice(&out.stdout).expect("stats JSON")
}

#[test]
fn the_sample_in_postgres_equals_the_sample_in_the_embedded_store() {
    let db = FreshDatabase::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let sample = aisle_testkit::bundled_sample();
    let sample = sample.to_str().expect("path");
    let embedded = tmp.path().join("embedded");
    let beside = tmp.path().join("beside-postgres");
    let (e, b) = (
        embedded.to_str().expect("path"),
        beside.to_str().expect("path"),
    );
    let import = |dir: &str, database: Option<&str>| {
        let out = aisle(
            &[
                "import",
                "--format",
                "instacart",
                "--json",
                "--data-dir",
                dir,
                sample,
            ],
            database,
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("report JSON")
    };
    let into_embedded = import(e, None);
    let first = import(b, Some(db.url()));
    assert_eq!(first, into_embedded, "the same import report");
    let added = first["events_added"].as_u64().expect("events_added");
    assert!(added >= 150_000, "{first}");
    assert!(
        !beside.join("aisle.redb").exists(),
        "with a database URL the embedded store is not created"
    );
    let again = import(b, Some(db.url()));
    assert_eq!(
        (&again["events_added"], &again["events_duplicate"]),
        (&serde_json::json!(0), &serde_json::json!(added)),
        "{again}"
    );
    let (plain, pg) = (stats(e, None), stats(b, Some(db.url())));
    for field in ["users", "items", "events"] {
        assert_eq!(plain[field], pg[field], "{field}: {plain} vs {pg}");
    }
    assert_eq!(plain, pg, "every statistic agrees");
    // The same held-out evaluation on both stores gives the same figures.
    let eval = |dir: &str, database: Option<&str>| {
        let path = tmp.path().join(format!("{}.json", database.is_some()));
        let p = path.to_str().expect("path");
        aisle(
            &[
                "eval",
                "--protocol",
                "temporal",
                "--data-dir",
                dir,
                "--models",
                "pop,itemknn",
                "--json",
                p,
            ],
            database,
        );
        let board: serde_json::Value =
            serde_json::from_slice(&fs_err::read(&path).expect("leaderboard")).expect("JSON");
        board["models"]
            .as_array()
            .expect("models")
            .iter()
            .map(|m| (m["model"].clone(), m["cases"].clone(), m["metrics"].clone()))
            .collect::<Vec<_>>()
    };
    let (plain, pg) = (eval(e, None), eval(b, Some(db.url())));
    assert_eq!(plain.len(), 2);
    assert_eq!(plain, pg);
}
