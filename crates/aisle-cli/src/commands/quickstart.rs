//! `aisle quickstart`: the README's first command.

use std::path::{Path, PathBuf};

use aisle_import::{Adapter, Source};
use anyhow::{Context, bail};

/// Where the bundled sample lives in a checkout.
const BUNDLED_SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/instacart-sample");

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Data directory to create afresh (an existing aisle store in it is replaced).
    #[arg(long, env = "AISLE_DATA_DIR", default_value = "aisle-data/quickstart")]
    pub data_dir: PathBuf,
    /// The sample to import (default: the Instacart sample bundled with the repository).
    #[arg(long)]
    pub sample: Option<PathBuf>,
    /// Stop before serving (the HTTP server is not built yet, so this is what happens anyway).
    #[arg(long)]
    pub no_serve: bool,
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let sample = sample_dir(args.sample)?;
    let store_file = args.data_dir.join("aisle.redb");
    if store_file.exists() {
        fs_err::remove_file(&store_file).context("while clearing the old quickstart store")?;
    }
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
    println!(
        "\nNext: aisle search --data-dir {d} \"organic yogurt\" --user 1 --filter category=\"dairy eggs\"\n      \
         aisle index --data-dir {d} --train-ranker   (personalised re-ranking)\n      \
         aisle train --data-dir {d} --model ease && aisle recommend --data-dir {d} --model ease --user 1",
        d = args.data_dir.display()
    );
    Ok(())
}
