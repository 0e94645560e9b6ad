//! `aisle quickstart`: the README's first command.
//!
//! It starts from a fresh store each run, but only ever clears a directory it made itself:
//! it marks its data directory with [`MARKER`] before writing anything there, and refuses a
//! directory that is neither empty nor marked (issue 13: it used to delete whatever aisle
//! store the data directory held).

use std::path::{Path, PathBuf};

use aisle_import::{Adapter, Source};
use anyhow::{Context, bail};

/// The file that marks a data directory as made by quickstart, and so safe to clear.
const MARKER: &str = ".aisle-quickstart";

/// Where the bundled sample lives in a checkout.
const BUNDLED_SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/instacart-sample");

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Data directory to create afresh. It must be absent, empty, or made by an earlier
    /// quickstart (which is then cleared); any other directory is refused and left alone.
    #[arg(long, env = "AISLE_DATA_DIR", default_value = "aisle-data/quickstart")]
    pub data_dir: PathBuf,
    /// The sample to import (default: the Instacart sample bundled with the repository).
    #[arg(long)]
    pub sample: Option<PathBuf>,
    /// Stop before serving.
    #[arg(long)]
    pub no_serve: bool,
    /// Where to serve (default: the config's, 127.0.0.1:7700; AISLE_LISTEN overrides it too).
    #[arg(long)]
    pub listen: Option<String>,
}

fn sample_dir(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir);
    }
    for candidate in [
        Path::new(BUNDLED_SAMPLE),
        Path::new("data/instacart-sample"),
    ] {
        if candidate.join("products.csv").is_file() {
            return Ok(candidate
                .canonicalize()
                .unwrap_or_else(|_| candidate.to_path_buf()));
        }
    }
    bail!(
        "the bundled sample was not found (looked in {BUNDLED_SAMPLE} and ./data/instacart-sample); pass --sample DIR"
    )
}

/// Makes `dir` an empty quickstart directory: creates an absent one, claims an empty one,
/// clears one an earlier quickstart made; refuses any other, leaving it untouched.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    let entries: Vec<fs_err::DirEntry> = match fs_err::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<_, _>>()
            .with_context(|| format!("while listing {}", dir.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(e).context("while checking the quickstart data directory");
        }
    };
    let marked = dir.join(MARKER).is_file();
    if !entries.is_empty() && !marked {
        bail!(
            "{d} is not empty and was not made by aisle quickstart (it has no {MARKER} file), \
             so quickstart leaves it alone: choose another directory with --data-dir (or \
             AISLE_DATA_DIR), or remove {d} yourself if you mean to replace it",
            d = dir.display()
        );
    }
    for entry in entries {
        if entry.file_name() == MARKER {
            continue;
        }
        let path = entry.path();
        // A link is removed, never followed.
        if entry.file_type()?.is_dir() {
            fs_err::remove_dir_all(&path)
        } else {
            fs_err::remove_file(&path)
        }
        .context("while clearing the old quickstart data directory")?;
    }
    fs_err::create_dir_all(dir)?;
    if !marked {
        fs_err::write(
            dir.join(MARKER),
            "Made by aisle quickstart, which clears this directory when it runs again.\n",
        )?;
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sample = sample_dir(args.sample)?;
    prepare_data_dir(&args.data_dir)?;
    println!(
        "aisle quickstart: importing {} into {}",
        sample.display(),
        args.data_dir.display()
    );
    let started = std::time::Instant::now();
    let store = aisle_store::open(&args.data_dir.to_string_lossy())?;
    let report = super::import::import_with_progress(
        store.as_ref(),
        &Source::Adapter(Adapter::Instacart),
        &[sample],
        true,
    )?;
    crate::output::print_report(&report);
    let stats = super::stats::compute(store.as_ref())?;
    let order_lines = stats
        .events_by_kind
        .iter()
        .find(|k| k.kind == "purchase")
        .map_or(0, |k| k.count);
    println!(
        "\nImported the Instacart sample in {:.1}s: {} products; {} users; {} order lines ({} events).\n",
        started.elapsed().as_secs_f64(),
        crate::output::thousands(stats.items as u64),
        crate::output::thousands(stats.users as u64),
        crate::output::thousands(order_lines as u64),
        crate::output::thousands(stats.events as u64),
    );
    crate::output::print_stats(&stats);
    drop(store);
    println!(
        "\nSearching the catalogue: aisle search --data-dir {} \"chocolat\"",
        args.data_dir.display()
    );
    super::search::search(super::search::SearchArgs {
        engine: super::search::EngineArgs {
            data: super::DataDir {
                data_dir: args.data_dir.clone(),
                database_url: None,
            },
            // Lexical in the quickstart: embedding the catalogue takes minutes on 2 cores.
            encoder: None,
            synonyms: None,
            no_encoder: true,
        },
        query: "chocolat".into(),
        user: None,
        filter: Vec::new(),
        mode: None,
        limit: 5,
        offset: 0,
        complete: false,
        json: false,
        no_log: true,
    })?;
    println!("\nEvaluating three recommenders on held-out orders (temporal split, full ranking):");
    let leaderboard = args.data_dir.join("eval").join("leaderboard.json");
    fs_err::create_dir_all(args.data_dir.join("eval"))?;
    super::eval::run(super::eval::Args {
        data: super::DataDir {
            data_dir: args.data_dir.clone(),
            database_url: None,
        },
        protocol: "temporal".into(),
        models: vec!["pop".into(), "itemknn".into(), "sknn".into()],
        tune: false,
        budget: 1,
        tune_seconds: None,
        validation_cases: 1000,
        ks: vec![10],
        test_fraction: 0.2,
        exclude_seen: false,
        test_days: 1.0,
        uniform_weights: false,
        weights: Vec::new(),
        seed: None,
        configs: Vec::new(),
        json: Some(leaderboard),
        report: None,
        export_split: None,
        peers: Vec::new(),
    })?;
    if args.no_serve {
        println!(
            "\nNext: aisle serve --data-dir {d}   (HTTP API, dashboard, storefront)\n      \
             aisle search --data-dir {d} \"organic yogurt\" --user 1 --filter category=\"dairy eggs\"\n      \
             aisle recommend --data-dir {d} --model itemknn --user 1 --explain   (after aisle train --model itemknn)",
            d = args.data_dir.display()
        );
        return Ok(());
    }
    let mut config = aisle_server::ServerConfig::load(None, |name| std::env::var(name).ok())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    // The demo: anyone on this machine may read; the storefront sends its events with a
    // fresh demo key (role `demo`: storefront routes only), and a fresh admin key is printed
    // for the dashboard, retraining and catalogue edits.
    config.public_reads = true;
    let demo = format!("demo-{:016x}", random_u64());
    let admin = format!("admin-{:016x}", random_u64());
    config.demo_key = Some(demo);
    config.keys.push(aisle_server::auth::ApiKey {
        key: admin.clone(),
        role: aisle_server::auth::Role::Admin,
    });
    println!("\nServing the sample (Ctrl-C stops). Admin key for this run: {admin}");
    super::serve::serve_with(
        config,
        &super::search::EngineArgs {
            data: super::DataDir {
                data_dir: args.data_dir.clone(),
                database_url: None,
            },
            encoder: None,
            synonyms: None,
            no_encoder: true,
        },
    )
}

/// A random number from the standard library's per-process hash seed (for throw-away keys).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
