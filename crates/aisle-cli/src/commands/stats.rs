//! `aisle stats`.

use aisle_features::{DatasetStats, EventLog};
use anyhow::Context;

use super::DataDir;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataDir,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.data.data_dir.join("aisle.redb").is_file() {
        anyhow::bail!(
            "{} holds no aisle store yet: import data first (aisle import --data-dir {} ...) or run aisle quickstart",
            args.data.data_dir.display(),
            args.data.data_dir.display()
        );
    }
    let store = aisle_store::open(&args.data.data_dir.to_string_lossy())
        .with_context(|| format!("while opening {}", args.data.data_dir.display()))?;
    let stats = compute(store.as_ref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        crate::output::print_stats(&stats);
    }
    Ok(())
}

pub fn compute(store: &dyn aisle_store::ReadStore) -> anyhow::Result<DatasetStats> {
    let log = EventLog::load(store).context("while reading events")?;
    Ok(DatasetStats::compute(store, &log)?)
}
