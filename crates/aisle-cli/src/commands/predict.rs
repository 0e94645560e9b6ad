//! `aisle predict purchase` and `aisle predict promo`: propensity models of the next order,
//! trained on the data directory's orders when asked, each answer explainable (TreeSHAP).

use aisle_analytics::propensity::{Prediction, Propensity, expected_buyers};
use aisle_analytics::purchase::{Target, group_rows, item_departments, reorder_rows};
use aisle_core::{ItemId, UserId};
use anyhow::{Context, bail};
use serde_json::json;

use super::DataDir;

#[derive(clap::Args, Debug)]
pub(super) struct PurchaseArgs {
    #[command(flatten)]
    data: DataDir,
    /// The user (external id).
    #[arg(long)]
    user: String,
    /// Products and departments to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Show each prediction's largest feature contributions.
    #[arg(long)]
    explain: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub(super) struct PromoArgs {
    #[command(flatten)]
    data: DataDir,
    /// Promote everything in this category (any level of the path, e.g. "dairy eggs" or "yogurt").
    #[arg(long, conflicts_with = "items")]
    category: Option<String>,
    /// Promote these items (external ids).
    #[arg(long, value_delimiter = ',')]
    items: Vec<String>,
    /// Users to list, most likely buyers first.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Report the expected number of buyers among the first K users.
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Show each prediction's largest feature contributions.
    #[arg(long)]
    explain: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

const EXPLAINED_FEATURES: usize = 4;

fn because_json(p: &Prediction) -> serde_json::Value {
    json!(
        p.because
            .iter()
            .map(|c| json!({"feature": c.feature, "value": c.value, "log_odds": c.log_odds}))
            .collect::<Vec<_>>()
    )
}

fn because_text(p: &Prediction) -> String {
    p.because
        .iter()
        .map(|c| format!("{} = {} ({:+.2})", c.feature, c.value, c.log_odds))
        .collect::<Vec<_>>()
        .join(", ")
}

fn importance_text(model: &Propensity) -> String {
    model
        .importance()
        .iter()
        .take(5)
        .map(|(name, share)| format!("{name} {:.0}%", 100.0 * share))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn purchase(args: PurchaseArgs) -> anyhow::Result<()> {
    let (store, log) = super::analytics::open(&args.data)?;
    let user = store
        .user_id(&args.user)?
        .with_context(|| format!("unknown user {:?}", args.user))?;
    let explain = if args.explain { EXPLAINED_FEATURES } else { 0 };
    let reorder = Propensity::fit_reorder(&log)?;
    let n = reorder.features().len();
    let mut products: Vec<Prediction> = reorder.predict(
        &reorder_rows(&log, Target::Next).of_user(user.0, n),
        explain,
    );
    if products.is_empty() {
        bail!(
            "user {:?} has fewer than two orders: too little history to predict their next one",
            args.user
        );
    }
    products.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    products.truncate(args.top);
    let (item_group, names) = item_departments(store.as_ref())?;
    let groups = Propensity::fit_group(&log, &item_group, names.len())?;
    let n = groups.features().len();
    let mut departments: Vec<Prediction> = groups.predict(
        &group_rows(&log, &item_group, names.len(), Target::Next).of_user(user.0, n),
        explain,
    );
    departments.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    departments.truncate(args.top);
    let title = |item: u32| -> String {
        store.item(ItemId(item)).ok().flatten().map_or_else(
            || item.to_string(),
            |i| format!("{} ({})", i.title, i.external_id),
        )
    };
    if args.json {
        let out = json!({
            "user": args.user,
            "products": products.iter().map(|p| json!({
                "item": store.item(ItemId(p.subject)).ok().flatten().map(|i| i.external_id),
                "title": title(p.subject),
                "probability": p.probability,
                "because": because_json(p),
            })).collect::<Vec<_>>(),
            "departments": departments.iter().map(|p| json!({
                "department": names[p.subject as usize],
                "probability": p.probability,
                "because": because_json(p),
            })).collect::<Vec<_>>(),
            "base_log_odds": {"products": reorder.base_log_odds(), "departments": groups.base_log_odds()},
            "importance": {"products": reorder.importance(), "departments": groups.importance()},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("user {}: products most likely in the next order", args.user);
    for p in &products {
        println!("  {:.3}  {}", p.probability, title(p.subject));
        if args.explain {
            println!("         because {}", because_text(p));
        }
    }
    println!("departments most likely in the next order");
    for p in &departments {
        println!("  {:.3}  {}", p.probability, names[p.subject as usize]);
        if args.explain {
            println!("         because {}", because_text(p));
        }
    }
    if args.explain {
        println!(
            "contributions are log-odds (TreeSHAP), added to base log-odds {:.2} (products) and {:.2} (departments)",
            reorder.base_log_odds(),
            groups.base_log_odds()
        );
        println!(
            "most important overall (products): {}",
            importance_text(&reorder)
        );
        println!(
            "most important overall (departments): {}",
            importance_text(&groups)
        );
    }
    Ok(())
}

pub(super) fn promo(args: PromoArgs) -> anyhow::Result<()> {
    let (store, log) = super::analytics::open(&args.data)?;
    let mut promoted: Vec<u32> = Vec::new();
    let what = if let Some(category) = &args.category {
        store.scan_items(&mut |id, item| {
            if item
                .category
                .iter()
                .any(|c| c.eq_ignore_ascii_case(category))
            {
                promoted.push(id.0);
            }
        })?;
        if promoted.is_empty() {
            bail!("--category {category:?}: no item has it in its category path");
        }
        format!("category {category:?} ({} items)", promoted.len())
    } else if !args.items.is_empty() {
        for external in &args.items {
            promoted.push(
                store
                    .item_id(external)?
                    .with_context(|| format!("--items: unknown item {external:?}"))?
                    .0,
            );
        }
        format!("{} items", promoted.len())
    } else {
        bail!("say what is on promotion: --category NAME or --items A,B,C");
    };
    let (item_group, names) = item_departments(store.as_ref())?;
    let model = Propensity::fit_group(&log, &item_group, names.len())?;
    let explain = if args.explain { EXPLAINED_FEATURES } else { 0 };
    let ranked = model.promotion_targets(&log, &promoted, explain)?;
    let expected = expected_buyers(&ranked, args.k);
    let everyone = expected_buyers(&ranked, ranked.len());
    let name = |user: u32| -> String {
        store
            .user(UserId(user))
            .ok()
            .flatten()
            .map_or_else(|| user.to_string(), |u| u.external_id)
    };
    if args.json {
        let out = json!({
            "promotion": what,
            "users_scored": ranked.len(),
            "k": args.k,
            "expected_buyers_in_top_k": expected,
            "expected_buyers_among_all": everyone,
            "targets": ranked.iter().take(args.top).map(|p| json!({
                "user": name(p.user),
                "probability": p.probability,
                "because": because_json(p),
            })).collect::<Vec<_>>(),
            "base_log_odds": model.base_log_odds(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "promotion of {what}: {} users scored; the top {} hold {expected:.1} expected buyers ({everyone:.1} among all)",
        ranked.len(),
        args.k.min(ranked.len())
    );
    for p in ranked.iter().take(args.top) {
        println!("  user {:<10} {:.3}", name(p.user), p.probability);
        if args.explain {
            println!("         because {}", because_text(p));
        }
    }
    if args.explain {
        println!(
            "contributions are log-odds (TreeSHAP) added to base log-odds {:.2}; most important overall: {}",
            model.base_log_odds(),
            importance_text(&model)
        );
    }
    Ok(())
}
