//! `aisle import`.

use std::path::PathBuf;

use aisle_import::{Adapter, Entity, ImportOptions, ImportReport, Mapping, Source, TableFormat};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::DataDir;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "FORMAT is csv, jsonl or parquet (with a column mapping), or a dataset adapter: \
instacart, yoochoose, s3rec, movielens, cdnow, groceries.\n\n\
Examples:\n  aisle import --format instacart data/instacart-sample\n  \
aisle import --format csv --map user=customer --map item=sku --kind view clicks.csv\n  \
aisle import --format csv --entity items --map id=sku --map title=name catalogue.csv"
)]
pub struct Args {
    #[command(flatten)]
    pub data: DataDir,
    /// Input format or dataset adapter.
    #[arg(long, short, env = "AISLE_FORMAT")]
    pub format: String,
    /// What the rows are (csv, jsonl, parquet only).
    #[arg(long, value_enum, default_value = "events")]
    pub entity: EntityArg,
    /// A TOML column mapping (see the docs of `aisle_import::Mapping`); flags override it.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Map a field to a column, FIELD=COLUMN (repeatable), e.g. --map user=customer_id.
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    pub map: Vec<String>,
    /// A fixed event kind for every row, when the file has no kind column.
    #[arg(long)]
    pub kind: Option<String>,
    /// How timestamps are written: auto, unix_s, unix_ms, rfc3339 or a strftime pattern.
    #[arg(long)]
    pub time_format: Option<String>,
    /// A custom event kind the rows may name (repeatable).
    #[arg(long = "custom-kind")]
    pub custom_kinds: Vec<String>,
    /// Reject the whole import at the first bad row (default: skip and count bad rows).
    #[arg(long)]
    pub strict: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Files (or, for adapters, dataset directories) to import, as one atomic write.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum EntityArg {
    Events,
    Items,
    Users,
}

impl Args {
    /// Turns the flags into a validated source.
    pub fn source(&self) -> anyhow::Result<Source> {
        if let Some(adapter) = Adapter::from_name(&self.format) {
            return Ok(Source::Adapter(adapter));
        }
        let format = match self.format.to_ascii_lowercase().as_str() {
            "csv" | "tsv" => TableFormat::Csv,
            "jsonl" | "ndjson" | "json" => TableFormat::Jsonl,
            "parquet" => TableFormat::Parquet,
            other => bail!(
                "unknown format {other:?}: use csv, jsonl, parquet, or an adapter ({})",
                Adapter::ALL.map(|(n, _)| n).join(", ")
            ),
        };
        let mut mapping = match &self.mapping {
            Some(path) => {
                let text = fs_err::read_to_string(path)?;
                Mapping::from_toml(&text)
                    .with_context(|| format!("while reading {}", path.display()))?
            }
            None => Mapping::default(),
        };
        mapping.entity = match self.entity {
            EntityArg::Events => mapping.entity,
            EntityArg::Items => Entity::Items,
            EntityArg::Users => Entity::Users,
        };
        for pair in &self.map {
            let Some((field, column)) = pair.split_once('=') else {
                bail!("--map {pair:?}: expected FIELD=COLUMN, e.g. --map user=customer_id");
            };
            mapping.set_column(field.trim(), column.trim());
        }
        if let Some(kind) = &self.kind {
            mapping.kind = Some(kind.clone());
        }
        if let Some(time_format) = &self.time_format {
            mapping.time_format = time_format.clone();
        }
        mapping
            .custom_kinds
            .extend(self.custom_kinds.iter().cloned());
        mapping.validate()?;
        Ok(Source::Table { format, mapping })
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let source = args.source()?;
    let store = args.data.open_store()?;
    let report = import_with_progress(store.as_ref(), &source, &args.paths, args.strict)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::output::report_json(&report))?
        );
    } else {
        crate::output::print_report(&report);
    }
    Ok(())
}

/// Runs an import with a progress spinner on stderr.
pub fn import_with_progress(
    store: &dyn aisle_store::Store,
    source: &Source,
    paths: &[PathBuf],
    strict: bool,
) -> anyhow::Result<ImportReport> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} importing {msg} rows ({elapsed})")
            .expect("the template is valid"),
    );
    let progress = |rows: u64| {
        bar.set_message(crate::output::thousands(rows));
        bar.tick();
    };
    let pseudonyms = crate::environment::pseudonymizer()?;
    let options = ImportOptions {
        strict,
        progress: Some(&progress),
        pseudonyms: pseudonyms.as_ref(),
    };
    let report = aisle_import::import(store, source, paths, &options);
    bar.finish_and_clear();
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    report.with_context(|| format!("while importing {} (nothing was written)", names.join(", ")))
}
