//! `aisle analyze`: the key behaviour tables of a data directory, as text, JSON and an HTML
//! report with charts (hand-written SVG: no JavaScript, no dependencies).

use std::fmt::Write as _;

use aisle_analytics::behaviour::{
    Cohort, FunnelStep, FunnelUnit, Rfm, cohorts, default_funnel_steps, funnel, rfm,
};
use aisle_analytics::profiles::{Affinity, ItemStats, category_affinity, item_stats};
use aisle_analytics::rules::{Rule, RuleSettings, association_rules, baskets};
use aisle_core::{EventKind, ItemId};
use aisle_eval::chart::{BarChart, escape};
use aisle_features::EventLog;
use anyhow::{Context, bail};
use serde_json::json;

use super::analytics::OverviewArgs;

pub fn overview(args: OverviewArgs) -> anyhow::Result<()> {
    let store = args.data.open_existing_store()?;
    let log = EventLog::load(store.as_ref())?;
    if log.is_empty() {
        bail!("{} has no events to analyse", args.data.data_dir.display());
    }
    let present: std::collections::HashSet<EventKind> =
        log.events().iter().map(|e| e.kind).collect();
    let steps: Vec<EventKind> = if args.steps.is_empty() {
        default_funnel_steps(&log)
    } else {
        args.steps
            .iter()
            .map(|s| {
                s.parse::<EventKind>()
                    .with_context(|| format!("--steps: unknown event kind {s:?}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let funnel_steps = if steps.is_empty() {
        Vec::new()
    } else {
        funnel(
            &log,
            &steps,
            FunnelUnit::Session,
            i64::MIN,
            i64::MAX,
            &|_| true,
        )?
    };
    let cohort_kind = present
        .contains(&EventKind::Purchase)
        .then_some(EventKind::Purchase);
    let cohort_table = cohorts(&log, cohort_kind, args.period_days)?;

    let mut purchases = Vec::new();
    let mut end_ms = i64::MIN;
    store.scan_events(&mut |e| {
        end_ms = end_ms.max(e.timestamp_ms);
        if e.kind == EventKind::Purchase {
            let units = f64::from(e.payload.quantity.unwrap_or(1.0));
            let amount = e.payload.price.map_or(units, |p| p * units);
            purchases.push((e.user.0, e.timestamp_ms, amount));
        }
    })?;
    let rfm_rows = rfm(purchases, end_ms);
    let mut segments: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &rfm_rows {
        *segments.entry(r.segment).or_default() += 1;
    }
    let basket_list = baskets(&log);
    let rules = association_rules(
        &basket_list,
        &RuleSettings {
            min_support: args.min_support,
            min_confidence: args.min_confidence,
            max_len: 4,
        },
    )?;
    let facts = super::analytics::item_facts(store.as_ref())?;
    let item_categories: Vec<Option<String>> = facts.iter().map(|f| f.category.clone()).collect();
    let affinity = category_affinity(&basket_list, &item_categories, 20);
    let items = item_stats(&log);
    let name = |id: u32| -> String {
        store.item(ItemId(id)).ok().flatten().map_or_else(
            || id.to_string(),
            |i| {
                if i.title.is_empty() {
                    i.external_id
                } else {
                    i.title
                }
            },
        )
    };

    println!("Funnel (per session):");
    for s in &funnel_steps {
        println!(
            "  {:<14} {:>9}  {:>6.1}% of previous  {:>6.1}% of first",
            s.kind,
            s.count,
            100.0 * s.from_previous,
            100.0 * s.from_first
        );
    }
    println!(
        "\nRetention by {}-day cohort ({} cohorts; share active 1, 2, 4 periods later):",
        args.period_days,
        cohort_table.len()
    );
    for c in cohort_table.iter().take(8) {
        let at = |p: usize| {
            c.retention
                .get(p)
                .map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v))
        };
        println!(
            "  period {:>3}: {:>6} users  {:>7} {:>7} {:>7}",
            c.period,
            c.users,
            at(1),
            at(2),
            at(4)
        );
    }
    println!("\nRFM segments ({} customers):", rfm_rows.len());
    for (segment, n) in &segments {
        println!("  {segment:<12} {n:>7}");
    }
    println!(
        "\nTop basket rules by lift ({} with support ≥ {}, confidence ≥ {}):",
        rules.len(),
        args.min_support,
        args.min_confidence
    );
    for r in rules.iter().take(10) {
        let lhs: Vec<String> = r.antecedent.iter().map(|&i| name(i)).collect();
        println!(
            "  {{{}}} => {{{}}}  lift {:.2}  confidence {:.2}",
            lhs.join(", "),
            name(r.consequent),
            r.lift,
            r.confidence
        );
    }

    println!("\nBest-selling items:");
    for s in items.iter().take(10) {
        println!(
            "  {:<45} {:>6} purchases  {:>5} buyers  {:>5.1}% buy again{}",
            name(s.item),
            s.purchases,
            s.buyers,
            100.0 * s.repeat_buyer_share,
            s.purchases_per_view
                .map_or(String::new(), |c| format!("  {:.1}% of views", 100.0 * c))
        );
    }
    println!("\nCategories bought together more than chance (lift, at least 20 baskets):");
    for a in affinity.iter().take(10) {
        println!(
            "  {} + {}: lift {:.2}, {} baskets, {:.0}% of {} baskets hold {}",
            a.a,
            a.b,
            a.lift,
            a.baskets,
            100.0 * a.confidence_a_to_b,
            a.a,
            a.b
        );
    }

    if let Some(path) = &args.json {
        let out = json!({
            "items": items.iter().take(200).map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["name"] = json!(name(s.item));
                v
            }).collect::<Vec<_>>(),
            "category_affinity": affinity,
            "funnel": funnel_steps,
            "cohorts": cohort_table,
            "rfm_segments": segments,
            "rfm": rfm_rows,
            "rules": rules.iter().map(|r| json!({
                "antecedent": r.antecedent.iter().map(|&i| name(i)).collect::<Vec<_>>(),
                "consequent": name(r.consequent), "support": r.support,
                "confidence": r.confidence, "lift": r.lift, "baskets": r.count,
            })).collect::<Vec<_>>(),
        });
        fs_err::write(path, serde_json::to_string_pretty(&out)?)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.report {
        let html = report(
            &funnel_steps,
            &cohort_table,
            &rfm_rows,
            &rules,
            (&items, &affinity),
            &name,
            &args.data.data_dir.display().to_string(),
        )?;
        fs_err::write(path, html)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// One bar per funnel step, scaled to the first step (the chart sits under its own heading).
fn funnel_svg(steps: &[FunnelStep]) -> String {
    let max = steps.first().map_or(1, |s| s.count.max(1)) as f64;
    steps
        .iter()
        .fold(
            BarChart::new("")
                .width(640.0)
                .label_width(110.0)
                .value_width(110.0)
                .row_height(34.0)
                .scale_max(max),
            |chart, s| {
                let shown = format!("{} ({:.1}%)", s.count, 100.0 * s.from_first);
                chart.bar(&s.kind, s.count as f64, &shown)
            },
        )
        .to_svg()
}

fn retention_svg(table: &[Cohort]) -> String {
    let rows = table.len().min(20);
    let cols = table
        .iter()
        .take(rows)
        .map(|c| c.retention.len())
        .max()
        .unwrap_or(1)
        .min(20);
    let cell = 28.0;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {} {}" width="{}" role="img" aria-label="retention heat map">"#,
        90.0 + cell * cols as f64,
        20.0 + cell * rows as f64,
        90.0 + cell * cols as f64
    );
    for p in 0..cols {
        let _ = write!(
            svg,
            r#"<text x="{:.0}" y="14" font-size="10">+{p}</text>"#,
            95.0 + cell * p as f64
        );
    }
    for (r, c) in table.iter().take(rows).enumerate() {
        let y = 20.0 + cell * r as f64;
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.0}" font-size="10">{} ({})</text>"#,
            y + 17.0,
            c.period,
            c.users
        );
        for (p, v) in c.retention.iter().take(cols).enumerate() {
            // Darker blue for higher retention; the first column is always 100%.
            let light = (95.0 - 60.0 * v.sqrt()).clamp(30.0, 95.0);
            let _ = write!(
                svg,
                r#"<rect x="{:.0}" y="{y:.0}" width="{cell}" height="{cell}" fill="hsl(210,60%,{light:.0}%)"><title>{:.1}%</title></rect>"#,
                90.0 + cell * p as f64,
                100.0 * v
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn rfm_svg(rows: &[Rfm]) -> String {
    let max_f = rows.iter().map(|r| r.frequency).max().unwrap_or(1).max(1) as f64;
    let max_r = rows.iter().map(|r| r.recency_days).fold(1.0, f64::max);
    let mut svg = String::from(
        r#"<svg viewBox="0 0 640 360" width="640" role="img" aria-label="RFM scatter"><text x="260" y="355" font-size="12">recency (days)</text><text x="0" y="12" font-size="12">frequency</text>"#,
    );
    for r in rows.iter().take(5000) {
        let x = 40.0 + 580.0 * r.recency_days / max_r;
        let y = 330.0 - 300.0 * (r.frequency as f64).ln_1p() / max_f.ln_1p();
        let colour = match r.segment {
            "champions" => "#2a7d2a",
            "loyal" => "#4878a8",
            "new" | "promising" => "#c9a227",
            "at risk" | "cannot lose" => "#d2691e",
            _ => "#a33",
        };
        let _ = write!(
            svg,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{colour}" fill-opacity="0.6"/>"#
        );
    }
    svg.push_str("</svg>");
    svg
}

fn report(
    steps: &[FunnelStep],
    table: &[Cohort],
    rows: &[Rfm],
    rules: &[Rule],
    (items, affinity): (&[ItemStats], &[Affinity]),
    name: &dyn Fn(u32) -> String,
    source: &str,
) -> anyhow::Result<String> {
    let mut html = String::new();
    writeln!(
        html,
        r#"<!doctype html><html><head><meta charset="utf-8"><title>aisle analytics: {}</title>"#,
        escape(source)
    )?;
    writeln!(
        html,
        "<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}}</style></head><body>"
    )?;
    writeln!(
        html,
        "<h1>Behaviour analytics</h1><p>Data directory: {}</p>",
        escape(source)
    )?;
    writeln!(
        html,
        "<h2>Conversion funnel (per session)</h2>{}",
        funnel_svg(steps)
    )?;
    writeln!(
        html,
        "<h2>Retention by cohort</h2><p>Rows: cohorts by first purchase period (users); columns: periods later.</p>{}",
        retention_svg(table)
    )?;
    let mut segments: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in rows {
        *segments.entry(r.segment).or_default() += 1;
    }
    writeln!(
        html,
        "<h2>RFM segments</h2><table><tr><th>segment</th><th>customers</th></tr>"
    )?;
    for (s, n) in &segments {
        writeln!(html, "<tr><td>{s}</td><td>{n}</td></tr>")?;
    }
    writeln!(html, "</table>{}", rfm_svg(rows))?;
    writeln!(
        html,
        "<h2>Top basket rules by lift</h2><table><tr><th>if bought</th><th>then</th><th>support</th><th>confidence</th><th>lift</th></tr>"
    )?;
    for r in rules.iter().take(25) {
        let lhs: Vec<String> = r.antecedent.iter().map(|&i| escape(&name(i))).collect();
        writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.3}</td><td>{:.2}</td></tr>",
            lhs.join(", "),
            escape(&name(r.consequent)),
            r.support,
            r.confidence,
            r.lift
        )?;
    }
    writeln!(html, "</table>")?;
    writeln!(
        html,
        "<h2>Best-selling items</h2><table><tr><th>item</th><th>purchases</th><th>buyers</th><th>buy again</th><th>purchases per view</th><th>purchases per cart add</th></tr>"
    )?;
    let share = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
    for s in items.iter().take(25) {
        writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td></tr>",
            escape(&name(s.item)),
            s.purchases,
            s.buyers,
            100.0 * s.repeat_buyer_share,
            share(s.purchases_per_view),
            share(s.purchases_per_cart)
        )?;
    }
    writeln!(
        html,
        "</table><h2>Cross-category affinity</h2><p>Category pairs bought in the same basket more often than chance (lift &gt; 1), at least 20 baskets.</p><table><tr><th>category</th><th>with</th><th>baskets</th><th>lift</th></tr>"
    )?;
    for a in affinity.iter().take(25) {
        writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
            escape(&a.a),
            escape(&a.b),
            a.baskets,
            a.lift
        )?;
    }
    writeln!(html, "</table></body></html>")?;
    Ok(html)
}
