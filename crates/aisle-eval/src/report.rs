//! Leaderboard output: a text table and an HTML report with SVG charts (drawn with
//! [`crate::chart`]; the metric-versus-K curve is the leaderboard's own).

use std::fmt::Write;

use crate::LeaderboardRow;
use crate::chart::{BarChart, COLOURS, escape};

/// A fixed-width table of the chosen metrics.
pub fn leaderboard_table(rows: &[LeaderboardRow], columns: &[String]) -> String {
    let mut out = format!("{:<10}", "model");
    for c in columns {
        out.push_str(&format!(" {c:>12}"));
    }
    out.push_str(&format!(" {:>9} {:>9}\n", "fit s", "score s"));
    let mut sorted: Vec<&LeaderboardRow> = rows.iter().collect();
    if let Some(first) = columns.first() {
        sorted.sort_by(|a, b| {
            let va = b.metrics.get(first).copied().unwrap_or(0.0);
            let vb = a.metrics.get(first).copied().unwrap_or(0.0);
            va.total_cmp(&vb)
        });
    }
    for row in sorted {
        out.push_str(&format!("{:<10}", row.model));
        for c in columns {
            match row.metrics.get(c) {
                Some(v) => out.push_str(&format!(" {v:>12.4}")),
                None => out.push_str(&format!(" {:>12}", "-")),
            }
        }
        out.push_str(&format!(
            " {:>9.2} {:>9.2}\n",
            row.fit_seconds, row.score_seconds
        ));
    }
    out
}

/// One bar per model: its value of `metric`, coloured like its curve in [`k_curve`].
fn bar_chart(rows: &[LeaderboardRow], metric: &str) -> String {
    rows.iter()
        .fold(
            BarChart::new(metric)
                .width(640.0)
                .label_width(90.0)
                .value_width(70.0)
                .row_height(28.0)
                .colours(&COLOURS),
            |chart, row| {
                let v = row.metrics.get(metric).copied().unwrap_or(0.0);
                chart.bar(&row.model, v, &format!("{v:.4}"))
            },
        )
        .to_svg()
}

fn k_curve(rows: &[LeaderboardRow], metric: &str, ks: &[usize]) -> String {
    let (w, h, left, bottom) = (640.0, 300.0, 50.0, 30.0);
    let max = rows
        .iter()
        .flat_map(|r| {
            ks.iter()
                .filter_map(|k| r.metrics.get(&format!("{metric}@{k}")))
        })
        .copied()
        .fold(1e-9, f64::max);
    let x = |i: usize| left + (w - left - 120.0) * i as f64 / (ks.len().max(2) - 1) as f64;
    let y = |v: f64| (h - bottom) - (h - bottom - 20.0) * v / max;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<text x="{left}" y="14" font-weight="bold">{} versus K</text>"#,
        escape(metric)
    );
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#888"/>"##,
        h - bottom,
        w - 120.0,
        h - bottom
    );
    for (i, k) in ks.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">K={k}</text>"#,
            x(i),
            h - 10.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="4" y="{:.1}">{max:.3}</text>"#,
        y(max) + 4.0
    );
    for (n, row) in rows.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let points: Vec<String> = ks
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                row.metrics
                    .get(&format!("{metric}@{k}"))
                    .map(|v| format!("{:.1},{:.1}", x(i), y(*v)))
            })
            .collect();
        crate::chart::polyline(&mut svg, colour, &points);
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" fill="{colour}">{}</text>"#,
            w - 110.0,
            30.0 + n as f64 * 15.0,
            escape(&row.model)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A self-contained HTML report: bar charts at the middle K, metric-versus-K curves and the
/// full table.
pub fn html_report(title: &str, rows: &[LeaderboardRow], ks: &[usize]) -> String {
    let k = ks.get(1).or(ks.first()).copied().unwrap_or(10);
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head><body><h1>{0}</h1>",
        escape(title)
    );
    for metric in [
        format!("ndcg@{k}"),
        format!("recall@{k}"),
        format!("coverage@{k}"),
    ] {
        html.push_str(&bar_chart(rows, &metric));
        html.push_str("<br>");
    }
    for metric in ["ndcg", "recall"] {
        html.push_str(&k_curve(rows, metric, ks));
        html.push_str("<br>");
    }
    let mut columns: Vec<String> = rows
        .iter()
        .flat_map(|r| r.metrics.keys().cloned())
        .collect();
    columns.sort();
    columns.dedup();
    html.push_str("<h2>All metrics (test split)</h2><table><tr><th>model</th>");
    for c in &columns {
        let _ = write!(html, "<th>{}</th>", escape(c));
    }
    html.push_str("<th>fit s</th><th>score s</th><th>settings</th></tr>");
    for row in rows {
        let _ = write!(html, "<tr><td>{}</td>", escape(&row.model));
        for c in &columns {
            match row.metrics.get(c) {
                Some(v) => {
                    let _ = write!(html, "<td>{v:.4}</td>");
                }
                None => html.push_str("<td>-</td>"),
            }
        }
        let _ = write!(
            html,
            "<td>{:.2}</td><td>{:.2}</td><td style=\"text-align:left;font-size:smaller\">{}</td></tr>",
            row.fit_seconds,
            row.score_seconds,
            escape(&row.config)
        );
    }
    html.push_str("</table></body></html>\n");
    html
}
