//! Every chart aisle draws, as standalone SVG strings: horizontal bars ([`BarChart`],
//! [`bar_chart_svg`]), a training curve ([`training_curve_svg`]) and cost curves on
//! log-log axes ([`log_log_svg`]).
//!
//! Hand-written SVG: a bar chart and a polyline need a few dozen lines, while a plotting
//! crate would add fonts and a rasteriser to the build. The leaderboard report, the
//! analytics report, `aisle train` and the benches all draw through this module, so the
//! charts look alike and text in them is escaped in one place.

use std::fmt::Write;

/// Escapes text for SVG and HTML content and attribute values.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A categorical palette (Tableau 10 and two more), cycled by series or bar.
pub const COLOURS: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#000000", "#17becf",
];

/// The one bar colour of single-series charts.
const BLUE: &str = "#1f77b4";

/// One bar: its label (left of the bar), length and the text printed after it.
struct Bar {
    label: String,
    value: f64,
    shown: String,
}

/// Horizontal bars, one per row, in the order added; lengths are drawn against the largest
/// value (or [`BarChart::scale_max`]).
///
/// ```
/// let svg = aisle_eval::chart::BarChart::new("orders by step")
///     .bar("view", 120.0, "120")
///     .bar("buy", 30.0, "30 (25.0%)")
///     .to_svg();
/// assert!(svg.starts_with("<svg") && svg.contains("25.0%"));
/// ```
pub struct BarChart {
    title: String,
    width: f64,
    label_width: f64,
    value_width: f64,
    row_height: f64,
    colours: &'static [&'static str],
    scale_max: Option<f64>,
    bars: Vec<Bar>,
}

impl BarChart {
    /// An empty chart; an empty `title` draws none (for charts under an HTML heading).
    pub fn new(title: &str) -> Self {
        BarChart {
            title: title.to_string(),
            width: 720.0,
            label_width: 260.0,
            value_width: 80.0,
            row_height: 22.0,
            colours: &[BLUE],
            scale_max: None,
            bars: Vec::new(),
        }
    }

    /// Total width in pixels (default 720).
    pub fn width(mut self, width: f64) -> Self {
        self.width = width;
        self
    }

    /// Width of the label column left of the bars (default 260).
    pub fn label_width(mut self, width: f64) -> Self {
        self.label_width = width;
        self
    }

    /// Room right of the longest bar for its printed value (default 80).
    pub fn value_width(mut self, width: f64) -> Self {
        self.value_width = width;
        self
    }

    /// Height of one row; the bar is 6 pixels thinner (default 22).
    pub fn row_height(mut self, height: f64) -> Self {
        self.row_height = height;
        self
    }

    /// Bar colours, cycled bar by bar (default one blue for all).
    pub fn colours(mut self, colours: &'static [&'static str]) -> Self {
        self.colours = colours;
        self
    }

    /// The value a full-length bar stands for (default the largest value).
    pub fn scale_max(mut self, max: f64) -> Self {
        self.scale_max = Some(max);
        self
    }

    /// Adds a bar of length `value` labelled `label`, with `shown` printed after it.
    pub fn bar(mut self, label: &str, value: f64, shown: &str) -> Self {
        self.bars.push(Bar {
            label: label.to_string(),
            value,
            shown: shown.to_string(),
        });
        self
    }

    /// The chart as a standalone SVG element.
    pub fn to_svg(&self) -> String {
        let (w, row, left) = (self.width, self.row_height, self.label_width);
        let top = if self.title.is_empty() { 8.0 } else { 34.0 };
        let h = top + row * self.bars.len() as f64 + 12.0;
        let max = self
            .scale_max
            .unwrap_or_else(|| self.bars.iter().map(|b| b.value).fold(0.0f64, f64::max))
            .max(1e-12);
        let plot = (w - left - self.value_width).max(0.0);
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12" role="img" aria-label="{0}"><rect width="{w}" height="{h}" fill="white"/>"#,
            escape(&self.title)
        );
        if !self.title.is_empty() {
            let _ = write!(
                svg,
                r#"<text x="8" y="18" font-weight="bold">{}</text>"#,
                escape(&self.title)
            );
        }
        for (k, bar) in self.bars.iter().enumerate() {
            let y = top + row * k as f64;
            let length = plot * bar.value.max(0.0) / max;
            let _ = write!(
                svg,
                r#"<text x="{0}" y="{1:.1}" text-anchor="end">{2}</text><rect x="{3}" y="{4:.1}" width="{5:.1}" height="{6:.1}" fill="{7}"/><text x="{8:.1}" y="{1:.1}">{9}</text>"#,
                left - 6.0,
                y + 14.0,
                escape(&bar.label),
                left,
                y + 3.0,
                length,
                row - 6.0,
                self.colours[k % self.colours.len().max(1)],
                left + length + 4.0,
                escape(&bar.shown)
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

/// Horizontal bars as a standalone SVG, one per (label, value), in the order given; values
/// are drawn against the largest one and printed as percentages when all are in [0, 1].
pub fn bar_chart_svg(title: &str, bars: &[(String, f64)]) -> String {
    let shares = bars.iter().all(|b| (0.0..=1.0).contains(&b.1));
    bars.iter()
        .fold(BarChart::new(title), |chart, (label, value)| {
            let shown = if shares {
                format!("{:.1}%", 100.0 * value)
            } else {
                format!("{value:.4}")
            };
            chart.bar(label, *value, &shown)
        })
        .to_svg()
}

/// Appends a line through `points` (`"x,y"` pairs) in `colour`.
pub fn polyline(svg: &mut String, colour: &str, points: &[String]) {
    let _ = write!(
        svg,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
        points.join(" ")
    );
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
        polyline(&mut svg, colour, &points);
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

/// Lines on log-log axes as a standalone SVG, one per named series of (x, y) points with
/// positive coordinates (others are left out): how a cost grows with a size. Gridlines sit
/// at the powers of ten; a straight line of slope 1 is linear growth.
pub fn log_log_svg(title: &str, x_label: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 360.0, 60.0, 150.0, 30.0, 40.0);
    let points = || {
        series
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|(x, y)| *x > 0.0 && *y > 0.0)
    };
    let decades = |values: Vec<f64>| {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            (
                lo.log10().floor(),
                hi.log10().ceil().max(lo.log10().floor() + 1.0),
            )
        } else {
            (0.0, 1.0)
        }
    };
    let (x_lo, x_hi) = decades(points().map(|p| p.0).collect());
    let (y_lo, y_hi) = decades(points().map(|p| p.1).collect());
    let x = |v: f64| left + (w - left - right) * (v.log10() - x_lo) / (x_hi - x_lo);
    let y = |v: f64| (h - bottom) - (h - bottom - top) * (v.log10() - y_lo) / (y_hi - y_lo);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="{w}" height="{h}" fill="white"/><text x="{left}" y="18" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for d in x_lo as i32..=x_hi as i32 {
        let at = x(10f64.powi(d));
        let _ = write!(
            svg,
            r##"<line x1="{at:.1}" y1="{top}" x2="{at:.1}" y2="{0}" stroke="#ddd"/><text x="{at:.1}" y="{1}" text-anchor="middle">1e{d}</text>"##,
            h - bottom,
            h - bottom + 14.0
        );
    }
    for d in y_lo as i32..=y_hi as i32 {
        let at = y(10f64.powi(d));
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{at:.1}" x2="{0}" y2="{at:.1}" stroke="#ddd"/><text x="{1}" y="{2:.1}" text-anchor="end">1e{d}</text>"##,
            w - right,
            left - 4.0,
            at + 4.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{0}" y="{1}" text-anchor="middle">{2}</text>"#,
        (left + w - right) / 2.0,
        h - 6.0,
        escape(x_label)
    );
    for (index, (name, values)) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let shown: Vec<String> = values
            .iter()
            .filter(|(a, b)| *a > 0.0 && *b > 0.0)
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect();
        if shown.is_empty() {
            continue;
        }
        polyline(&mut svg, colour, &shown);
        let _ = write!(
            svg,
            r#"<text x="{0}" y="{1}" fill="{colour}">{2}</text>"#,
            w - right + 10.0,
            top + 14.0 * (index as f64 + 1.0),
            escape(name)
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
    fn log_log_chart_draws_a_line_per_series_and_skips_non_positive_points() {
        let svg = log_log_svg(
            "cost",
            "events",
            &[
                ("als".into(), vec![(1e6, 2.0), (1e7, 20.0)]),
                ("none".into(), vec![(1e6, 0.0)]),
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert!(svg.contains(">als<") && !svg.contains(">none<"));
        assert!(svg.contains("1e6") && svg.contains("1e7"));
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
