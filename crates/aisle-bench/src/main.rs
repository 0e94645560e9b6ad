//! `aisle-bench`: the benchmarks and peer comparisons, out of the product binary. Each
//! subcommand measures one thing on real data and writes its report under bench/results/.
//! Run from the repository root, with `../shared/data` beside it:
//! `cargo run --release -p aisle-bench -- <subcommand>`.

mod ann;
mod churn;
mod cluster;
mod encryption;
mod flood;
mod forget;
mod import;
mod policy;
mod purchase;
mod replicas;
mod scale;
mod search;
mod serve;
mod transformer;

use std::process::ExitCode;

use clap::Parser;

/// Benchmarks of aisle; each writes a report under bench/results/.
#[derive(Parser, Debug)]
#[command(name = "aisle-bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand, Debug)]
enum Which {
    /// Bulk import and training-structure build on the shared datasets; writes bench/results/import.md.
    Import(import::ImportArgs),
    /// Train and score the transformer on a shared dataset; writes bench/results/transformer-DATASET.md.
    Transformer(transformer::TransformerArgs),
    /// Churn on CDNOW: BG/NBD P(alive) against a GBDT; writes bench/results/churn-cdnow.md.
    Churn(churn::ChurnArgs),
    /// Reorder prediction on the bundled Instacart sample; writes bench/results/purchase.md.
    Purchase(purchase::PurchaseArgs),
    /// Personalised product search on the bundled Instacart sample; writes bench/results/search.md.
    Search(search::SearchArgs),
    /// Load test of the HTTP server on loopback; writes bench/results/serve.md.
    Serve(serve::ServeBenchArgs),
    /// Distinct sessions and queries against `aisle serve` with small caps; writes bench/results/flood.md.
    Flood(flood::FloodArgs),
    /// Off-policy evaluation against obp, simulator calibration, bandits against Vowpal
    /// Wabbit, interleaving; writes bench/results/policy.md (run scripts/bench-policy.sh).
    Policy(policy::PolicyArgs),
    /// Plain against encrypted store: durable ingest and a full scan; writes
    /// bench/results/encryption.md.
    Encryption(encryption::EncryptionArgs),
    /// PostgreSQL beside the embedded store: durable commits of 1 and 1,000 events and the
    /// bulk import; writes bench/results/cluster.md.
    Cluster(cluster::ClusterArgs),
    /// Three `aisle serve` replicas over PostgreSQL and NATS through a SIGKILL, a database
    /// restart and a stream restart; writes bench/results/cluster-replicas.md.
    Replicas(replicas::ReplicasArgs),
    /// Forgetting users in place against a refit without them, per model, on MovieLens-100k
    /// and The Complete Journey; writes bench/results/forget.md.
    Forget(forget::ForgetArgs),
    /// Top-10 latency of ALS at 50,000 to 1,000,000 items, exact against the IVF index,
    /// with its recall; writes bench/results/ann.md.
    Ann(ann::AnnArgs),
    /// Cost curves (import, memory, training per model) on synthetic logs scaled up from
    /// The Complete Journey; writes bench/results/scale-curves.md and .svg.
    Scale(scale::ScaleArgs),
    /// Writes the synthetic log of the cost curves at one size as CSV (used by
    /// bench/implicit.sh scaled10m).
    Synth(scale::SynthArgs),
    /// One import of a scaled log, printed as JSON (used by `scale`).
    #[command(hide = true)]
    ScaleImport(scale::ImportOneArgs),
    /// One fit on a scaled log, printed as JSON (used by `scale`).
    #[command(hide = true)]
    ScaleFit(scale::FitOneArgs),
    /// One measurement in this process, printed as JSON (used by `import`).
    #[command(hide = true)]
    ImportOne(import::OneArgs),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.which {
        Which::Import(a) => import::import_report(a),
        Which::Transformer(a) => transformer::run(a),
        Which::Flood(a) => flood::run(a),
        Which::Search(a) => search::run(a),
        Which::Purchase(a) => purchase::run(a),
        Which::Churn(a) => churn::run(a),
        Which::Serve(a) => serve::run(a),
        Which::Policy(a) => policy::run(a),
        Which::Encryption(a) => encryption::run(a),
        Which::Cluster(a) => cluster::run(a),
        Which::Replicas(a) => replicas::run(a),
        Which::Ann(a) => ann::run(a),
        Which::Forget(a) => forget::run(a),
        Which::Scale(a) => scale::run(a),
        Which::Synth(a) => scale::synth(a),
        Which::ScaleImport(a) => {
            println!("{}", serde_json::to_string(&scale::import_one(&a)?)?);
            Ok(())
        }
        Which::ScaleFit(a) => {
            println!("{}", serde_json::to_string(&scale::fit_one(&a)?)?);
            Ok(())
        }
        Which::ImportOne(a) => {
            let m = import::measure(&a)?;
            println!("{}", serde_json::to_string(&m)?);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    aisle_cli::exit_code(run(Cli::parse()))
}
