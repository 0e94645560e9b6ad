//! `aisle-bench churn`: who is still buying after the calibration period? BG/NBD's P(alive)
//! against a GBDT on RFM and behaviour features, on held-out CDNOW customers.

use std::fmt::Write as _;
use std::path::PathBuf;

use aisle_analytics::bgnbd::{BgNbd, Customer, summarise};
use aisle_analytics::churn::{CHURN_FEATURES, churn_row, fit_churn_gbdt, units_bought};
use aisle_analytics::purchase::auc;
use aisle_features::EventLog;
use aisle_import::{Adapter, ImportOptions, Source};
use aisle_store::MemStore;
use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct ChurnArgs {
    /// The CDNOW file (master or sample).
    #[arg(
        long,
        env = "AISLE_CDNOW",
        default_value = "../shared/data/cdnow/CDNOW_master.txt"
    )]
    data: PathBuf,
    /// Last day of calibration.
    #[arg(long, default_value = "1997-09-30")]
    calibration_end: String,
    /// Report to write.
    #[arg(long, default_value = "bench/results/churn-cdnow.md")]
    out: PathBuf,
}

pub fn run(args: ChurnArgs) -> anyhow::Result<()> {
    let store = MemStore::new();
    aisle_import::import(
        &store,
        &Source::Adapter(Adapter::Cdnow),
        std::slice::from_ref(&args.data),
        &ImportOptions::default(),
    )
    .with_context(|| format!("while importing {}", args.data.display()))?;
    let log = EventLog::load(&store)?;
    let end = aisle_cli::commands::day_number(&args.calibration_end, "--calibration-end")?;
    let last = log
        .events()
        .iter()
        .map(|e| e.timestamp_ms.div_euclid(86_400_000))
        .max()
        .unwrap_or(end);
    let customers = summarise(&log, end, last);
    let units = units_bought(&log, end);
    // Every third customer (by a fixed hash) is held out; the rest train both models.
    let held =
        |c: &Customer| (u64::from(c.user).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 3 == 0;
    let (test, train): (Vec<&Customer>, Vec<&Customer>) = customers.iter().partition(|c| held(c));
    let active = |c: &Customer| f32::from(u8::from(c.holdout > 0.0));
    let train_owned: Vec<Customer> = train.iter().map(|c| **c).collect();
    let bgnbd = BgNbd::fit(&train_owned)?;
    let labels: Vec<f32> = test.iter().map(|c| active(c)).collect();
    let p_alive: Vec<f32> = test.iter().map(|c| bgnbd.p_alive(c) as f32).collect();
    let expected: Vec<f32> = test
        .iter()
        .map(|c| bgnbd.expected_transactions(c, (last - end) as f64 / 7.0) as f32)
        .collect();
    let model = fit_churn_gbdt(&train, &units)?;
    let gbdt: Vec<f32> = test
        .iter()
        .map(|c| model.predict_probability(&churn_row(c, units[c.user as usize])))
        .collect();

    let mut md = String::new();
    writeln!(
        md,
        "# Churn on CDNOW: who buys again after the calibration period?"
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "Command: `cargo run --release -p aisle-bench -- churn` ({}). Calibration to {}; the label is \"bought at",
        args.data.display(),
        args.calibration_end
    )?;
    writeln!(
        md,
        "least once in the holdout\" (to the last day of the data). Features from calibration only. Two thirds of the"
    )?;
    writeln!(
        md,
        "customers (fixed hash) train both models; the AUCs are on the other third."
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "{} customers, {} held out, {:.1}% of them active in the holdout.",
        customers.len(),
        test.len(),
        100.0 * labels.iter().sum::<f32>() as f64 / labels.len().max(1) as f64
    )?;
    writeln!(md)?;
    writeln!(md, "| predictor | AUC (active in holdout) |")?;
    writeln!(md, "| --- | ---: |")?;
    writeln!(md, "| BG/NBD P(alive) | {:.4} |", auc(&p_alive, &labels))?;
    writeln!(
        md,
        "| BG/NBD expected holdout purchases | {:.4} |",
        auc(&expected, &labels)
    )?;
    writeln!(
        md,
        "| GBDT on RFM and behaviour ({} trees, depth 4) | {:.4} |",
        model.trees.len(),
        auc(&gbdt, &labels)
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "P(alive) ranks badly because BG/NBD lets customers drop out only right after a purchase: everyone who never"
    )?;
    writeln!(
        md,
        "bought again has P(alive) = 1, and most of them do not come back. The model's expected holdout purchases, which"
    )?;
    writeln!(
        md,
        "also weigh the purchase rate, are the BG/NBD score to rank customers by."
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "BG/NBD fitted on the training customers: r = {:.3}, alpha = {:.3}, a = {:.3}, b = {:.3}.",
        bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b
    )?;
    writeln!(md)?;
    writeln!(md, "GBDT importance (total split gain):")?;
    let gains = model.feature_gains();
    let total: f64 = gains.iter().sum::<f64>().max(1e-12);
    for (name, gain) in CHURN_FEATURES.iter().zip(gains) {
        writeln!(md, "- {name}: {:.1}%", 100.0 * gain / total)?;
    }
    if let Some(dir) = args.out.parent() {
        fs_err::create_dir_all(dir)?;
    }
    fs_err::write(&args.out, &md)?;
    print!("{md}");
    Ok(())
}
