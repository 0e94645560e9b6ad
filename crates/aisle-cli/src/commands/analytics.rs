//! `aisle analyze rules` and `aisle predict churn --model bgnbd`: the first parts of the
//! analytics and prediction commands.

use aisle_analytics::bgnbd::{BgNbd, summarise};
use aisle_analytics::rules::{RuleSettings, association_rules, baskets};
use aisle_core::ItemId;
use aisle_features::EventLog;
use anyhow::{Context, bail};
use serde_json::json;

use super::DataDir;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    which: Option<Analysis>,
    #[command(flatten)]
    overview: OverviewArgs,
}

/// `aisle analyze` without a subcommand: the key tables, and optionally JSON and HTML.
#[derive(clap::Args, Debug)]
pub(super) struct OverviewArgs {
    #[command(flatten)]
    pub(super) data: DataDir,
    /// Funnel steps, in order (default: those of view, click, add_to_cart, purchase the data has).
    #[arg(long, value_delimiter = ',')]
    pub(super) steps: Vec<String>,
    /// Cohort period in days.
    #[arg(long, default_value_t = 7)]
    pub(super) period_days: i64,
    /// Smallest support of the basket rules shown.
    #[arg(long, default_value_t = 0.005)]
    pub(super) min_support: f64,
    /// Smallest confidence of the basket rules shown.
    #[arg(long, default_value_t = 0.2)]
    pub(super) min_confidence: f64,
    /// Write every table as JSON to this file.
    #[arg(long)]
    pub(super) json: Option<std::path::PathBuf>,
    /// Write an HTML report with charts (funnel, retention heat map, RFM, top rules).
    #[arg(long)]
    pub(super) report: Option<std::path::PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
enum Analysis {
    /// Association rules X ⇒ y from baskets (purchases grouped by session or order).
    Rules(RulesArgs),
    /// A shopper's portrait: categories, brands, price level, active hours and weekdays,
    /// purchase cadence, tenure.
    Portrait(PortraitArgs),
}

#[derive(clap::Args, Debug)]
struct PortraitArgs {
    #[command(flatten)]
    data: DataDir,
    /// The user (external id).
    #[arg(long)]
    user: String,
    /// Categories and brands to list.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct RulesArgs {
    #[command(flatten)]
    data: DataDir,
    /// Smallest share of baskets holding the whole rule.
    #[arg(long, default_value_t = 0.001)]
    min_support: f64,
    /// Smallest share of the antecedent's baskets that also hold the consequent.
    #[arg(long, default_value_t = 0.5)]
    min_confidence: f64,
    /// Largest rule, in items.
    #[arg(long, default_value_t = 10)]
    max_len: usize,
    /// Rules to print (all go into --json).
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Print JSON: every rule, best lift first, and their number as `count`.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    #[command(subcommand)]
    which: Prediction,
}

#[derive(clap::Subcommand, Debug)]
enum Prediction {
    /// What a user's next order will hold: products (reorders) and departments.
    Purchase(super::predict::PurchaseArgs),
    /// Who is slipping away: repeat-buying model fitted on a calibration period.
    Churn(ChurnArgs),
    /// Whom a promotion should reach: users ranked by their propensity to buy it.
    Promo(super::predict::PromoArgs),
}

#[derive(clap::Args, Debug)]
struct ChurnArgs {
    #[command(flatten)]
    data: DataDir,
    /// The model: bgnbd (Fader, Hardie & Lee, 2005) or gbdt (gradient-boosted trees on RFM
    /// and behaviour features, trained to predict purchases in the holdout).
    #[arg(long, default_value = "bgnbd")]
    model: String,
    /// With --model gbdt: show each customer's largest feature contributions (TreeSHAP).
    #[arg(long)]
    explain: bool,
    /// Last day of the calibration period (YYYY-MM-DD); later purchases are the holdout.
    #[arg(long)]
    calibration_end: String,
    /// Last day of the holdout period (default: the last purchase in the data).
    #[arg(long)]
    holdout_end: Option<String>,
    /// Customers to list, least likely alive first.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn open(data: &DataDir) -> anyhow::Result<(Box<dyn aisle_store::Store>, EventLog)> {
    let store = data.open_existing_store()?;
    let log = EventLog::load(store.as_ref())?;
    Ok((store, log))
}

/// Days since 1970-01-01 of a YYYY-MM-DD date given with `flag`.
pub fn day_number(text: &str, flag: &str) -> anyhow::Result<i64> {
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("{flag} {text:?}: expected a date as YYYY-MM-DD"))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).context("epoch")?;
    Ok(date.signed_duration_since(epoch).num_days())
}

/// What portraits and affinities need of each item: department, brand, price.
pub(super) fn item_facts(
    store: &dyn aisle_store::ReadStore,
) -> anyhow::Result<Vec<aisle_analytics::profiles::ItemFacts>> {
    let mut facts = vec![aisle_analytics::profiles::ItemFacts::default(); store.counts()?.items];
    store.scan_items(&mut |id, item| {
        facts[id.index()] = aisle_analytics::profiles::ItemFacts {
            category: item.category.first().cloned(),
            brand: item.brand,
            price: item.price,
        };
    })?;
    Ok(facts)
}

fn portrait(args: PortraitArgs) -> anyhow::Result<()> {
    let (store, log) = open(&args.data)?;
    let user = store
        .user_id(&args.user)?
        .with_context(|| format!("unknown user {:?}", args.user))?;
    let p =
        aisle_analytics::profiles::portrait(&log, &item_facts(store.as_ref())?, user.0, args.top);
    if args.json {
        let mut out = serde_json::to_value(&p)?;
        out["user"] = json!(args.user);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let list = |pairs: &[(String, f64)]| -> String {
        if pairs.is_empty() {
            return "-".into();
        }
        pairs
            .iter()
            .map(|(name, share)| format!("{name} {:.0}%", 100.0 * share))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let peak = |counts: &[usize]| {
        counts
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, usize::MAX - i))
            .map_or(0, |(i, _)| i)
    };
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    println!("user {}", args.user);
    println!(
        "  events: {}",
        p.events
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  tenure: {:.0} days; {} orders", p.tenure_days, p.orders);
    if let Some(d) = p.days_between_orders {
        println!("  orders every {d:.1} days on average");
    }
    if let Some(d) = p.days_since_last_order {
        println!("  last order {d:.1} days before the end of the data");
    }
    println!("  categories: {}", list(&p.categories));
    println!("  brands: {}", list(&p.brands));
    match (p.mean_price_bought, p.price_percentile) {
        (Some(m), Some(q)) => println!(
            "  price level: {m:.2} on average, dearer than {:.0}% of the catalogue",
            100.0 * q
        ),
        _ => println!("  price level: unknown (no prices)"),
    }
    println!(
        "  most active at {}:00 UTC, on {}s",
        peak(&p.hours),
        DAYS[peak(&p.weekdays)]
    );
    Ok(())
}

pub fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    let args = match args.which {
        None => return super::analytics_report::overview(args.overview),
        Some(Analysis::Portrait(args)) => return portrait(args),
        Some(Analysis::Rules(args)) => args,
    };
    let (store, log) = open(&args.data)?;
    let baskets = baskets(&log);
    let settings = RuleSettings {
        min_support: args.min_support,
        min_confidence: args.min_confidence,
        max_len: args.max_len,
    };
    let rules = association_rules(&baskets, &settings)?;
    let name = |id: u32| -> String {
        store
            .item(ItemId(id))
            .ok()
            .flatten()
            .map_or_else(|| id.to_string(), |i| i.external_id)
    };
    if args.json {
        let listed: Vec<_> = rules
            .iter()
            .map(|r| {
                json!({
                    "antecedent": r.antecedent.iter().map(|&i| name(i)).collect::<Vec<_>>(),
                    "consequent": name(r.consequent),
                    "support": r.support,
                    "confidence": r.confidence,
                    "lift": r.lift,
                    "baskets": r.count,
                })
            })
            .collect();
        let out = json!({
            "baskets": baskets.len(),
            "min_support": args.min_support,
            "min_confidence": args.min_confidence,
            "count": rules.len(),
            "rules": listed,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} rules from {} baskets (support ≥ {}, confidence ≥ {}); top {} by lift:",
        rules.len(),
        baskets.len(),
        args.min_support,
        args.min_confidence,
        args.top.min(rules.len())
    );
    for r in rules.iter().take(args.top) {
        let lhs: Vec<String> = r.antecedent.iter().map(|&i| name(i)).collect();
        println!(
            "  {{{}}} => {{{}}}  support {:.4}  confidence {:.3}  lift {:.2}",
            lhs.join(", "),
            name(r.consequent),
            r.support,
            r.confidence,
            r.lift
        );
    }
    Ok(())
}

pub fn predict(args: PredictArgs) -> anyhow::Result<()> {
    let args = match args.which {
        Prediction::Churn(args) => args,
        Prediction::Purchase(args) => return super::predict::purchase(args),
        Prediction::Promo(args) => return super::predict::promo(args),
    };
    if args.model != "bgnbd" && args.model != "gbdt" {
        bail!(
            "--model {:?}: the churn models are: bgnbd, gbdt",
            args.model
        );
    }
    if args.explain && args.model != "gbdt" {
        bail!("--explain explains the gbdt model's predictions: add --model gbdt");
    }
    let (store, log) = open(&args.data)?;
    let calibration_end = day_number(&args.calibration_end, "--calibration-end")?;
    let last_day = log
        .events()
        .iter()
        .map(|e| e.timestamp_ms.div_euclid(86_400_000))
        .max()
        .unwrap_or(calibration_end);
    let holdout_end = match &args.holdout_end {
        Some(d) => day_number(d, "--holdout-end")?,
        None => last_day,
    };
    let customers = summarise(&log, calibration_end, holdout_end);
    if args.model == "gbdt" {
        return churn_gbdt(
            &args,
            store.as_ref(),
            &log,
            &customers,
            (calibration_end, holdout_end, last_day),
        );
    }
    let fit = BgNbd::fit(&customers)?;
    let holdout_weeks = (holdout_end - calibration_end) as f64 / 7.0;
    let forecast: f64 = customers
        .iter()
        .map(|c| fit.expected_transactions(c, holdout_weeks))
        .sum();
    let actual: f64 = customers.iter().map(|c| c.holdout).sum();
    let mut at_risk: Vec<(f64, &aisle_analytics::bgnbd::Customer)> = customers
        .iter()
        .map(|c| (fit.p_alive(c), c))
        .filter(|(_, c)| c.x > 0.0)
        .collect();
    at_risk.sort_by(|a, b| a.0.total_cmp(&b.0));
    let name = |user: u32| -> String {
        store
            .user(aisle_core::UserId(user))
            .ok()
            .flatten()
            .map_or_else(|| user.to_string(), |u| u.external_id)
    };
    if args.json {
        let out = json!({
            "model": "bgnbd",
            "r": fit.r,
            "alpha": fit.alpha,
            "a": fit.a,
            "b": fit.b,
            "log_likelihood": fit.log_likelihood,
            "customers": customers.len(),
            "calibration_repeat_transactions": customers.iter().map(|c| c.x).sum::<f64>(),
            "holdout_weeks": holdout_weeks,
            "holdout_forecast": forecast,
            "holdout_actual": actual,
            "least_likely_alive": at_risk.iter().take(args.top).map(|(p, c)| json!({
                "user": name(c.user), "p_alive": p, "repeat_purchases": c.x,
                "weeks_since_last": c.t - c.t_x,
                "expected_holdout_purchases": fit.expected_transactions(c, holdout_weeks),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "BG/NBD on {} customers (calibration to {}): r = {:.3}, alpha = {:.3}, a = {:.3}, b = {:.3} (log-likelihood {:.2})",
        customers.len(),
        args.calibration_end,
        fit.r,
        fit.alpha,
        fit.a,
        fit.b,
        fit.log_likelihood
    );
    println!(
        "holdout ({holdout_weeks:.1} weeks): {forecast:.0} repeat purchases expected, {actual:.0} made"
    );
    println!("least likely to still be active (of those who bought again):");
    for (p, c) in at_risk.iter().take(args.top) {
        println!(
            "  user {}: P(alive) {:.2}; {} repeat purchases, the last {:.0} weeks before the calibration end",
            name(c.user),
            p,
            c.x,
            c.t - c.t_x
        );
    }
    Ok(())
}

/// `--model gbdt`: learn "bought in the holdout" from the calibration features, then score
/// every customer as of the last day of the data for the next period of the same length.
fn churn_gbdt(
    args: &ChurnArgs,
    store: &dyn aisle_store::Store,
    log: &EventLog,
    calibration: &[aisle_analytics::bgnbd::Customer],
    (calibration_end, holdout_end, last_day): (i64, i64, i64),
) -> anyhow::Result<()> {
    use aisle_analytics::churn::{CHURN_FEATURES, churn_row, fit_churn_gbdt, units_bought};
    let units = units_bought(log, calibration_end);
    let model = fit_churn_gbdt(&calibration.iter().collect::<Vec<_>>(), &units)?;
    let now = summarise(log, last_day, last_day);
    let units_now = units_bought(log, last_day);
    let mut scored: Vec<(f32, u32, [f32; 7])> = now
        .iter()
        .map(|c| {
            let row = churn_row(c, units_now[c.user as usize]);
            (model.predict_probability(&row), c.user, row)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let window_weeks = (holdout_end - calibration_end) as f64 / 7.0;
    let name = |user: u32| -> String {
        store
            .user(aisle_core::UserId(user))
            .ok()
            .flatten()
            .map_or_else(|| user.to_string(), |u| u.external_id)
    };
    let explain = |row: &[f32; 7]| -> Vec<(&'static str, f32, f64)> {
        let mut phi: Vec<(&'static str, f32, f64)> = model
            .shap_values(row)
            .into_iter()
            .enumerate()
            .map(|(j, c)| (CHURN_FEATURES[j], row[j], c))
            .collect();
        phi.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
        phi.truncate(4);
        phi
    };
    if args.json {
        let out = json!({
            "model": "gbdt",
            "customers": now.len(),
            "window_weeks": window_weeks,
            "trained_on": {"customers": calibration.len(), "calibration_end": args.calibration_end},
            "base_log_odds": model.expected_value(),
            "least_likely_to_buy": scored.iter().take(args.top).map(|(p, user, row)| json!({
                "user": name(*user),
                "p_buys_in_window": p,
                "because": if args.explain {
                    explain(row).iter().map(|(f, v, c)| json!({"feature": f, "value": v, "log_odds": c})).collect::<Vec<_>>()
                } else { Vec::new() },
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "GBDT churn model: {} trees trained on {} customers (calibration to {}); scored as of the last day for the next {window_weeks:.1} weeks",
        model.trees.len(),
        calibration.len(),
        args.calibration_end
    );
    println!("least likely to buy in that window:");
    for (p, user, row) in scored.iter().take(args.top) {
        println!("  user {}: P(buys) {:.3}", name(*user), p);
        if args.explain {
            let parts: Vec<String> = explain(row)
                .iter()
                .map(|(f, v, c)| format!("{f} = {v} ({c:+.2})"))
                .collect();
            println!("         because {}", parts.join(", "));
        }
    }
    if args.explain {
        println!(
            "contributions are log-odds (TreeSHAP) added to base log-odds {:.2}",
            model.expected_value()
        );
    }
    Ok(())
}
