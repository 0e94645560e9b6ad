//! Leaderboard output: a text table and an HTML report with SVG charts.
//!
//! The charts are plain SVG written here: a bar chart and metric-versus-K lines need a few
//! dozen lines, while a plotting crate would add fonts and a rasteriser to the build.

use std::fmt::Write;

use crate::LeaderboardRow;

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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLOURS: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#000000", "#17becf",
];

fn bar_chart(rows: &[LeaderboardRow], metric: &str) -> String {
    let (w, bar_h, left) = (640.0, 22.0, 90.0);
    let h = rows.len() as f64 * (bar_h + 6.0) + 30.0;
    let max = rows
        .iter()
        .filter_map(|r| r.metrics.get(metric))
        .copied()
        .fold(1e-9, f64::max);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<text x="{left}" y="14" font-weight="bold">{}</text>"#,
        escape(metric)
    );
    for (n, row) in rows.iter().enumerate() {
        let v = row.metrics.get(metric).copied().unwrap_or(0.0);
        let y = 24.0 + n as f64 * (bar_h + 6.0);
        let len = (w - left - 70.0) * v / max;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{len:.1}" height="{bar_h}" fill="{}"/><text x="{:.1}" y="{}">{v:.4}</text>"#,
            left - 6.0,
            y + 15.0,
            escape(&row.model),
            COLOURS[n % COLOURS.len()],
            left + len + 4.0,
            y + 15.0
        );
    }
    svg.push_str("</svg>");
    svg
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
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
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

/// A training curve as a standalone SVG: loss per epoch (left, blue) and the validation
/// metric per epoch (right, orange), each on its own scale, the best epoch marked.
pub fn training_curve_svg(title: &str, loss: &[f64], validation: &[f64], metric: &str) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 320.0, 60.0, 70.0, 30.0, 40.0);
    let epochs = loss.len().max(validation.len()).max(2);
    let x = |i: usize| left + (w - left - right) * i as f64 / (epochs - 1) as f64;
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (lo.min(0.0), lo.max(0.0) + 1.0)
        }
    };
    let y = |v: f64, (lo, hi): (f64, f64)| (h - bottom) - (h - bottom - top) * (v - lo) / (hi - lo);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="{w}" height="{h}" fill="white"/>"#
    );
    let _ = write!(
        svg,
        r#"<text x="{left}" y="18" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#888"/><text x="{2}" y="{3}" text-anchor="middle">epoch (1 to {epochs})</text>"##,
        h - bottom,
        w - right,
        (left + w - right) / 2.0,
        h - 8.0
    );
    for (values, colour, label, anchor_x, anchor) in [
        (loss, "#1f77b4", "training loss", 4.0, "start"),
        (validation, "#ff7f0e", metric, w - 4.0, "end"),
    ] {
        if values.is_empty() {
            continue;
        }
        let r = range(values);
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v, r)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let _ = write!(
            svg,
            r#"<text x="{anchor_x}" y="{:.1}" fill="{colour}" text-anchor="{anchor}">{:.4}</text><text x="{anchor_x}" y="{:.1}" fill="{colour}" text-anchor="{anchor}">{:.4}</text><text x="{anchor_x}" y="{:.1}" fill="{colour}" text-anchor="{anchor}">{}</text>"#,
            top + 4.0,
            r.1,
            h - bottom,
            r.0,
            (h - bottom + top) / 2.0,
            escape(label)
        );
    }
    if let Some((best, _)) = validation
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
    {
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1}" stroke="#999" stroke-dasharray="4 3"/><text x="{0:.1}" y="{2}" text-anchor="middle" fill="#555">best epoch {3}</text>"##,
            x(best),
            h - bottom,
            top - 2.0,
            best + 1
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars as a standalone SVG, one per (label, value), in the order given; values
/// are drawn against the largest one and printed as percentages when all are in [0, 1].
pub fn bar_chart_svg(title: &str, bars: &[(String, f64)]) -> String {
    let (w, row, left, top) = (720.0, 22.0, 260.0, 34.0);
    let h = top + row * bars.len() as f64 + 12.0;
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-12);
    let shares = bars.iter().all(|b| (0.0..=1.0).contains(&b.1));
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="{w}" height="{h}" fill="white"/><text x="8" y="18" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (k, (label, value)) in bars.iter().enumerate() {
        let y = top + row * k as f64;
        let width = (w - left - 80.0) * value.max(0.0) / max;
        let shown = if shares {
            format!("{:.1}%", 100.0 * value)
        } else {
            format!("{value:.4}")
        };
        let _ = write!(
            svg,
            r##"<text x="{0}" y="{1:.1}" text-anchor="end">{2}</text><rect x="{3}" y="{4:.1}" width="{5:.1}" height="{6:.1}" fill="#1f77b4"/><text x="{7:.1}" y="{1:.1}">{8}</text>"##,
            left - 6.0,
            y + 14.0,
            escape(label),
            left,
            y + 3.0,
            width,
            row - 6.0,
            left + width + 4.0,
            shown
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod curve_tests {
    use super::*;

    #[test]
    fn training_curve_marks_the_best_epoch_and_draws_both_series() {
        let svg = training_curve_svg("t", &[3.0, 2.0, 1.5], &[0.01, 0.05, 0.04], "NDCG@10");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("best epoch 2"), "{svg}");
        assert!(svg.contains("0.0500") && svg.contains("3.0000"));
    }

    #[test]
    fn bar_chart_draws_one_bar_per_value_scaled_to_the_largest() {
        let svg = bar_chart_svg(
            "importance",
            &[("a<b".into(), 0.6), ("c".into(), 0.3), ("d".into(), 0.1)],
        );
        assert_eq!(svg.matches("<rect").count(), 4, "background and three bars");
        assert!(svg.contains("a&lt;b") && svg.contains("60.0%") && svg.contains("10.0%"));
        assert!(
            svg.contains(r#"width="380.0""#),
            "the largest bar spans the plot: {svg}"
        );
    }
}
