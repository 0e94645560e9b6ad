//! The workspace's layers, checked: every crate depends only on crates of lower layers (the
//! one-way flow of ARCHITECTURE.md), the HTTP layer has no training or prediction code, and
//! the product's CLI has no benchmark code. A new crate fails this test until it is given a
//! layer here and in ARCHITECTURE.md.

use std::path::Path;

/// Each crate's layer: a crate may depend on crates of lower layers only.
const LAYERS: &[(&str, u32)] = &[
    ("aisle-testkit", 0),
    ("aisle-core", 0),
    ("aisle-seal", 0),
    ("aisle-store", 1),
    ("aisle-privacy", 1),
    ("aisle-ann", 1),
    ("aisle-stream", 1),
    ("aisle-features", 2),
    ("aisle-import", 2),
    ("aisle-trees", 2),
    ("aisle-models", 3),
    ("aisle-search", 3),
    ("aisle-analytics", 3),
    ("aisle-policy", 3),
    ("aisle-eval", 4),
    ("aisle-engine", 5),
    ("aisle-server", 6),
    ("aisle-cli", 7),
    ("aisle-bench", 8),
];

/// Crates the HTTP layer must not use: training and prediction belong to the engine.
const NOT_IN_THE_HTTP_LAYER: &[&str] = &[
    "aisle-ann",
    "aisle-features",
    "aisle-models",
    "aisle-trees",
    "aisle-analytics",
    "aisle-eval",
];

fn layer(name: &str) -> u32 {
    LAYERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("{name} has no layer: add it to LAYERS and to ARCHITECTURE.md"))
}

/// The `aisle-*` crates `manifest` depends on (not dev-dependencies: tests may reach up).
fn aisle_dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("read the manifest");
    let table: toml::Table = text.parse().expect("parse the manifest");
    table
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|deps| {
            deps.keys()
                .filter(|k| k.starts_with("aisle-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn no_crate_depends_on_one_above_it() {
    let crates = aisle_testkit::repo_root().join("crates");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("crates/") {
        let dir = entry.expect("entry").path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        let own = layer(&name);
        for dep in aisle_dependencies(&manifest) {
            if layer(&dep) >= own {
                wrong.push(format!(
                    "{name} (layer {own}) depends on {dep} (layer {})",
                    layer(&dep)
                ));
            }
            if name == "aisle-server" && NOT_IN_THE_HTTP_LAYER.contains(&dep.as_str()) {
                wrong.push(format!(
                    "aisle-server depends on {dep}: that is the engine's work"
                ));
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 12,
        "only {checked} crates found under {}",
        crates.display()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    eprintln!("{checked} crates, every dependency points down");
}

#[test]
fn the_product_cli_has_no_benchmark_code() {
    let src = aisle_testkit::repo_root().join("crates/aisle-cli/src");
    let mut found = Vec::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("bench"))
            {
                found.push(path.display().to_string());
            }
        }
    }
    assert!(found.is_empty(), "benchmark code in the CLI: {found:?}");
}
