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
    let store = args.data.open_existing_store()?;
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
