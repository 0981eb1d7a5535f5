//! The retention heatmap as a self-contained SVG, an HTML page holding it, or a PNG.
//!
//! Hand-written SVG keeps churn free of plotting and font dependencies and
//! renders the same everywhere: browsers, email clients, slides. Cells are
//! laid out on a fixed grid, so 36 monthly cohorts stay readable.

use std::fmt::Write;

use crate::base::dates::Day;
use crate::base::named::Named;
use crate::domain::cohorts::{Cohorts, Retention};

const CELL_W: usize = 46;
const CELL_H: usize = 22;
const LEFT: usize = 150; // cohort label and size columns
const TOP: usize = 78; // title, subtitle and offset header

/// A blue scale from near-white (0) to dark blue (1): (r, g, b).
fn color(v: f64) -> (u8, u8, u8) {
    const STOPS: [(f64, (f64, f64, f64)); 5] = [
        (0.0, (247.0, 251.0, 255.0)),
        (0.1, (198.0, 219.0, 239.0)),
        (0.25, (107.0, 174.0, 214.0)),
        (0.5, (33.0, 113.0, 181.0)),
        (1.0, (8.0, 48.0, 107.0)),
    ];
    let v = v.clamp(0.0, 1.0);
    let i = STOPS.iter().rposition(|s| s.0 <= v).unwrap_or(0).min(STOPS.len() - 2);
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let t = (v - a.0) / (b.0 - a.0);
    let mix = |x: f64, y: f64| (x + (y - x) * t).round() as u8;
    (mix(a.1 .0, b.1 .0), mix(a.1 .1, b.1 .1), mix(a.1 .2, b.1 .2))
}

/// Whole percents from 10%, one decimal below, "<1%" for a few customers.
fn percent(v: f64) -> String {
    let p = v * 100.0;
    if p == 0.0 {
        "0%".to_string()
    } else if p < 0.95 {
        "<1%".to_string()
    } else if p < 9.95 {
        format!("{p:.1}%")
    } else {
        format!("{}%", p.round())
    }
}

/// Text for XML and HTML (element text or a double-quoted attribute).
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An SVG of `w` x `h` on white, opened with its bold title at height `y`.
fn svg_start(
    w: impl std::fmt::Display,
    h: impl std::fmt::Display,
    title: &str,
    size: u32,
    y: u32,
) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, DejaVu Sans, sans-serif" font-size="11"><rect width="{w}" height="{h}" fill="white"/><text x="10" y="{y}" font-size="{size}" font-weight="bold">{}</text>"#,
        escape(title)
    )
}

/// The heatmap: cohorts down, periods since first purchase across, one
/// `<rect class="cell">` per matrix entry, labelled with the retention in percent.
pub fn heatmap_svg(c: &Cohorts, first_day: i32, as_of: i32) -> String {
    let mut cohorts: Vec<(i32, u64)> = Vec::new();
    let mut width = 0;
    for cell in &c.cells {
        if cohorts.last().map(|x| x.0) != Some(cell.cohort) {
            cohorts.push((cell.cohort, cell.cohort_size));
        }
        width = width.max(cell.period as usize + 1);
    }
    let w = LEFT + width.max(1) * CELL_W + 20;
    let h = TOP + cohorts.len().max(1) * CELL_H + 40;
    let kind = match c.retention {
        Retention::Classic => "classic: bought in the period",
        Retention::Rolling => "rolling: bought in the period or later",
    };
    let title = format!(
        "Customer retention by {} of first purchase, {} to {}",
        c.period.name(),
        Day(first_day),
        Day(as_of)
    );
    let mut s = svg_start(w, h, &title, 15, 22);
    let sub = format!(
        "Retention ({kind}) in % of each cohort; {}s since first purchase across. * partial period.",
        c.period.name()
    );
    let _ = write!(s, r##"<text x="10" y="42" fill="#444">{}</text>"##, escape(&sub));
    let header_y = TOP - 8;
    let _ = write!(s, r#"<text x="10" y="{header_y}" font-weight="bold">cohort</text>"#);
    let _ = write!(
        s,
        r#"<text x="{}" y="{header_y}" font-weight="bold" text-anchor="end">customers</text>"#,
        LEFT - 8
    );
    for k in 0..width {
        let x = LEFT + k * CELL_W + CELL_W / 2;
        let _ = write!(
            s,
            r#"<text x="{x}" y="{header_y}" text-anchor="middle" font-weight="bold">{k}</text>"#
        );
    }
    let row_of = |cohort: i32| cohorts.iter().position(|x| x.0 == cohort).unwrap_or(0);
    for (i, (cohort, size)) in cohorts.iter().enumerate() {
        let y = TOP + i * CELL_H + CELL_H / 2 + 4;
        let _ = write!(s, r#"<text x="10" y="{y}">{}</text>"#, Day(*cohort));
        let _ = write!(s, r#"<text x="{}" y="{y}" text-anchor="end">{size}</text>"#, LEFT - 8);
    }
    for cell in &c.cells {
        let (x, y) = (LEFT + cell.period as usize * CELL_W, TOP + row_of(cell.cohort) * CELL_H);
        let (r, g, b) = color(cell.retention);
        let dark = cell.retention > 0.3;
        let _ = write!(
            s,
            r#"<rect class="cell" x="{x}" y="{y}" width="{}" height="{}" fill="rgb({r},{g},{b})" stroke="white"><title>{} +{} {}: {} of {} customers ({})</title></rect>"#,
            CELL_W,
            CELL_H,
            Day(cell.cohort),
            cell.period,
            c.period.name(),
            cell.customers,
            cell.cohort_size,
            escape(&percent(cell.retention))
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" fill="{}">{}{}</text>"#,
            x + CELL_W / 2,
            y + CELL_H / 2 + 4,
            if dark { "white" } else { "#222" },
            escape(&percent(cell.retention)),
            if cell.partial { "*" } else { "" }
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The font embedded for raster output, so a PNG looks the same on a
/// server without fonts (DejaVu Sans, Bitstream Vera license, see assets/fonts).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Rasterises an SVG made by this module to PNG bytes, at twice its size
/// for sharp text on high-density screens and slides.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    opt.fontdb_mut().load_font_data(FONT.to_vec());
    opt.font_family = "DejaVu Sans".to_string();
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| format!("invalid chart SVG: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width() * 2, size.height() * 2)
        .ok_or_else(|| format!("chart too large ({}x{})", size.width(), size.height()))?;
    resvg::render(&tree, tiny_skia::Transform::from_scale(2.0, 2.0), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| format!("encoding PNG: {e}"))
}

/// What a chart file holds, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
    Html,
}

impl Format {
    /// The format of `path`, checked before any work is done; `html` says whether
    /// an HTML page is on offer. The error names the extensions to use.
    pub fn of(path: &std::path::Path, html: bool) -> Result<Format, String> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
        match ext.as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            Some("html") | Some("htm") if html => Ok(Format::Html),
            _ => Err(format!(
                "cannot draw a chart to {}: use a .svg{} file",
                path.display(),
                if html { ", .png or .html" } else { " or .png" }
            )),
        }
    }

    /// The file's bytes for a chart drawn as `svg`; `title` names an HTML page.
    pub fn render(self, svg: String, title: &str) -> Result<Vec<u8>, String> {
        Ok(match self {
            Format::Svg => svg.into_bytes(),
            Format::Png => svg_to_png(&svg)?,
            Format::Html => format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>body{{margin:16px;font-family:Helvetica,Arial,sans-serif}}svg{{max-width:100%;height:auto}}</style></head><body>\n{svg}</body></html>\n",
                escape(title)
            )
            .into_bytes(),
        })
    }
}

/// One series of a line chart: a label, a colour and (x, y) points.
pub struct Series<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// The backtest chart: cumulative purchases over the holdout, actual and
/// predicted (left), and the calibration of P(no purchase) by decile (right).
pub fn backtest_svg(title: &str, cumulative: &[Series], calibration: &[Series]) -> String {
    let (w, h) = (900usize, 400usize);
    let mut s = svg_start(w, h, title, 15, 22);
    panel(
        &mut s,
        50.0,
        60.0,
        360.0,
        280.0,
        "Cumulative purchases in the holdout",
        "days",
        "purchases",
        cumulative,
        false,
    );
    panel(
        &mut s,
        500.0,
        60.0,
        360.0,
        280.0,
        "Calibration of P(no purchase), by decile",
        "predicted",
        "observed",
        calibration,
        true,
    );
    s.push_str("</svg>\n");
    s
}

#[allow(clippy::too_many_arguments)]
fn panel(
    s: &mut String,
    x0: f64,
    y0: f64,
    pw: f64,
    ph: f64,
    title: &str,
    xl: &str,
    yl: &str,
    series: &[Series],
    unit_square: bool,
) {
    let all = series.iter().flat_map(|c| c.points.iter());
    let (mut xmax, mut ymax) = all.fold((0.0f64, 0.0f64), |(a, b), p| (a.max(p.0), b.max(p.1)));
    if unit_square {
        (xmax, ymax) = (1.0, 1.0);
    }
    let (xmax, ymax) = (xmax.max(1e-9), ymax.max(1e-9));
    let px = |x: f64| x0 + x / xmax * pw;
    let py = |y: f64| y0 + ph - y / ymax * ph;
    let _ = write!(
        s,
        r#"<text x="{x0}" y="{}" font-weight="bold">{}</text>"#,
        y0 - 12.0,
        escape(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#444">{}</text>"##,
            px(f * xmax),
            y0 + ph + 14.0,
            tick(f * xmax)
        );
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#444">{}</text>"##,
            x0 - 4.0,
            py(f * ymax) + 4.0,
            tick(f * ymax)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        x0 + pw / 2.0,
        y0 + ph + 30.0,
        escape(xl)
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
        x0 - 38.0,
        y0 + ph / 2.0,
        x0 - 38.0,
        y0 + ph / 2.0,
        escape(yl)
    );
    if unit_square {
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#bbb" stroke-dasharray="4 3"/>"##,
            px(0.0),
            py(0.0),
            px(1.0),
            py(1.0)
        );
    }
    for (i, c) in series.iter().enumerate() {
        let pts: Vec<String> =
            c.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        let _ = write!(
            s,
            r#"<polyline class="series" points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            pts.join(" "),
            c.color
        );
        if unit_square {
            for &(x, y) in &c.points {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                    px(x),
                    py(y),
                    c.color
                );
            }
        }
        let ly = y0 + 14.0 + i as f64 * 16.0;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="3" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            x0 + 10.0,
            ly - 4.0,
            c.color,
            x0 + 28.0,
            ly,
            escape(c.label)
        );
    }
}

/// One line of a trend chart: a value per period, `None` where unknown.
pub struct Trend<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub values: Vec<Option<f64>>,
}

/// A step of 1, 2, 2.5 or 5 × 10^k that splits `max` into at most four intervals.
fn nice_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|&s| s >= raw).unwrap_or(10.0 * mag)
}

/// Axis labels that stay short: 950, 1.2k, 12k, 3.4M.
fn compact(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if x == x.round() {
        format!("{x:.0}{suffix}")
    } else if x.abs() < 10.0 {
        format!("{x:.1}{suffix}")
    } else {
        format!("{x:.0}{suffix}")
    }
}

/// A small line chart of one figure over the report's periods: a point per
/// period (`<circle class="point">`), lines broken where a value is unknown.
pub fn trend_svg(title: &str, labels: &[String], series: &[Trend]) -> String {
    let (w, h) = (440.0, 250.0);
    let (x0, y0, pw, ph) = (52.0, if series.len() > 1 { 62.0 } else { 44.0 }, 370.0, 150.0);
    let values = series.iter().flat_map(|t| t.values.iter().flatten().copied());
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    // Counts get whole-number ticks.
    let whole = series.iter().flat_map(|t| t.values.iter().flatten()).all(|v| v.fract() == 0.0);
    let step = if whole { nice_step(hi - lo).max(1.0) } else { nice_step(hi - lo) };
    let (ymin, ymax) = ((lo / step).floor() * step, ((hi / step).ceil() * step).max(step));
    let n = labels.len().max(1);
    let px = |i: usize| if n == 1 { x0 + pw / 2.0 } else { x0 + i as f64 / (n - 1) as f64 * pw };
    let py = |v: f64| y0 + ph - (v - ymin) / (ymax - ymin) * ph;
    let mut s = svg_start(w, h, title, 14, 20);
    if series.len() > 1 {
        let mut lx = x0;
        for t in series {
            let _ = write!(
                s,
                r#"<rect x="{lx}" y="32" width="14" height="4" fill="{}"/><text x="{}" y="38">{}</text>"#,
                t.color,
                lx + 18.0,
                escape(t.label)
            );
            lx += 30.0 + 6.5 * t.label.len() as f64;
        }
    }
    let mut v = ymin;
    while v <= ymax + step * 1e-9 {
        let y = py(v);
        let _ = write!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
            x0 + pw,
            x0 - 6.0,
            y + 4.0,
            compact(v)
        );
        v += step;
    }
    let every = n.div_ceil(6);
    for (i, l) in labels.iter().enumerate() {
        if (n - 1 - i).is_multiple_of(every) {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#444">{}</text>"##,
                px(i),
                y0 + ph + 16.0,
                escape(l)
            );
        }
    }
    if series.iter().all(|t| t.values.iter().all(Option::is_none)) {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#6b7280">not available</text>"##,
            x0 + pw / 2.0,
            y0 + ph / 2.0
        );
    }
    for t in series {
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, s: &mut String| {
            if run.len() > 1 {
                let _ = write!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                    run.join(" "),
                    t.color
                );
            }
            run.clear();
        };
        for (i, v) in t.values.iter().enumerate() {
            match v {
                Some(v) => run.push(format!("{:.1},{:.1}", px(i), py(*v))),
                None => flush(&mut run, &mut s),
            }
        }
        flush(&mut run, &mut s);
        for (i, v) in t.values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    s,
                    r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{}: {}</title></circle>"#,
                    px(i),
                    py(*v),
                    t.color,
                    escape(labels.get(i).map_or("", |l| l.as_str())),
                    compact(*v)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

fn tick(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v >= 100.0 {
        format!("{}", v.round())
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_and_labels() {
        assert_eq!(color(0.0), (247, 251, 255));
        assert_eq!(color(1.0), (8, 48, 107));
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.254), "25%");
        assert_eq!(percent(0.052), "5.2%");
        assert_eq!(percent(0.04), "4.0%");
        assert_eq!(percent(0.0999), "10%");
        assert_eq!(percent(0.004), "<1%");
        assert_eq!(percent(0.0), "0%");
    }

    #[test]
    fn trend_axes() {
        assert_eq!(nice_step(100.0), 25.0);
        assert_eq!(nice_step(7.0), 2.0);
        assert_eq!(nice_step(1234.0), 500.0);
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(25000.0), "25k");
        assert_eq!(compact(2_000_000.0), "2M");
        assert_eq!(compact(7.5), "7.5");
        let svg = trend_svg(
            "Active",
            &["a".into(), "b".into(), "c".into()],
            &[Trend { label: "x", color: "red", values: vec![Some(1.0), None, Some(3.0)] }],
        );
        assert_eq!(svg.matches("class=\"point\"").count(), 2);
        // A line needs two consecutive points: the gap breaks it.
        assert_eq!(svg.matches("<polyline").count(), 0);
        // Counts get whole-number ticks: 0, 1, 2, 3, not 0.5 steps.
        assert!(svg.contains(">3</text>") && !svg.contains(">0.5</text>"), "{svg}");
    }
}
