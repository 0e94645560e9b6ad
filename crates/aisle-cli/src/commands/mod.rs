//! Subcommands.

mod analytics;
mod analytics_report;
mod eval;
mod import;
mod policy;
mod predict;
mod privacy;
mod quickstart;
mod search;
mod serve;
mod stats;
mod train;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use analytics::day_number;
pub use policy::{Deployed, deployed};
pub use search::find_encoder;

/// aisle: search, recommendations and behaviour analytics for an online shop, in one program.
#[derive(Parser, Debug)]
#[command(name = "aisle", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Import the bundled sample into a fresh data directory and describe it.
    Quickstart(quickstart::Args),
    /// Import files (CSV, JSON Lines, Parquet, or a dataset adapter) into a data directory.
    Import(import::Args),
    /// Describe the data in a data directory: users, items, events, sparsity, long tail, sessions.
    Stats(stats::Args),
    /// Evaluate recommenders offline (leave-one-out, temporal or session protocol) and print a leaderboard.
    Eval(eval::Args),
    /// Train a model on everything in the data directory and save it there (models/NAME.model).
    Train(train::TrainArgs),
    /// Top-N items for a user, an anonymous session or similar to an item, from a trained model.
    Recommend(train::RecommendArgs),
    /// Search the catalogue: full text (English and Chinese), semantic, personalised for --user.
    Search(search::SearchArgs),
    /// Build or update the search index and optionally train the personalised re-ranker.
    Index(search::IndexArgs),
    /// Behaviour analytics: association rules (more to come).
    Analyze(analytics::AnalyzeArgs),
    /// Predictions: the next order (purchase), churn, and promotion targets, each explainable.
    Predict(analytics::PredictArgs),
    /// Serve the HTTP API, the dashboard and the demo storefront.
    Serve(serve::ServeArgs),
    /// Serving policies: evaluate off-policy, simulate, train a bandit, deploy behind a gate, list.
    Policy(policy::PolicyArgs),
    /// Differential privacy: the budget spent, and the noise and accounting for cross-checks.
    Privacy(privacy::PrivacyArgs),
    /// The audit log of forgets, private releases and admin calls: verify its hash chain.
    Audit(privacy::AuditArgs),
    /// Encryption at rest: status, and rotating the master key.
    Keys(privacy::KeysArgs),
}

/// Where the store lives.
#[derive(clap::Args, Debug, Clone)]
pub struct DataDir {
    /// Data directory: the embedded store (created if missing), and this process's own files
    /// (models, search index, privacy ledger, audit log) in every set-up.
    #[arg(long, env = "AISLE_DATA_DIR", default_value = "aisle-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL of the system of record (`postgresql://USER:PASSWORD@HOST/DB`). When
    /// set, users, items, events and impressions live there instead of the embedded store,
    /// shared by every aisle process given the same URL.
    #[arg(long, env = "AISLE_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DataDir {
    /// Opens the store: the database when a URL is given, else the embedded one.
    pub fn open_store(&self) -> anyhow::Result<Box<dyn aisle_store::Store>> {
        use anyhow::Context;
        match &self.database_url {
            Some(url) if !aisle_store::is_database_url(url) => anyhow::bail!(
                "--database-url {url:?} is not a PostgreSQL URL: it must start with postgresql:// or postgres://"
            ),
            Some(url) => aisle_store::open(url)
                .context("while opening the database given by --database-url (AISLE_DATABASE_URL)"),
            None => aisle_store::open(&self.data_dir.to_string_lossy())
                .with_context(|| format!("while opening {}", self.data_dir.display())),
        }
    }

    /// Opens a store that must already hold data: a command that reads is not the place to
    /// create an empty embedded store by a typo in `--data-dir`.
    pub fn open_existing_store(&self) -> anyhow::Result<Box<dyn aisle_store::Store>> {
        if self.database_url.is_none() && !self.data_dir.join("aisle.redb").is_file() {
            anyhow::bail!(
                "{} holds no aisle store yet: import data first (aisle import, or aisle quickstart)",
                self.data_dir.display()
            );
        }
        self.open_store()
    }
}

/// Runs the subcommand `cli` names.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Quickstart(args) => quickstart::run(args),
        Command::Import(args) => import::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Train(args) => train::train(args),
        Command::Recommend(args) => train::recommend_command(args),
        Command::Search(args) => search::search(args),
        Command::Analyze(args) => analytics::analyze(args),
        Command::Predict(args) => analytics::predict(args),
        Command::Index(args) => search::index(args),
        Command::Serve(args) => serve::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Privacy(args) => privacy::privacy(args),
        Command::Audit(args) => privacy::audit(args),
        Command::Keys(args) => privacy::keys(args),
    }
}

/// A progress bar on stderr for `len` units of `what`.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} ({{elapsed}}, {{eta}} left)"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
