//! PNG charts of the scene workload, drawn with `plotters`' bitmap backend.
//!
//! Text is rendered with `ab_glyph` from a font embedded in the binary
//! (`assets/DejaVuSans-subset.ttf`), so drawing needs no system font and no
//! fontconfig. Two chart kinds: grouped bars on a log or linear axis, and lines on
//! log–log axes. Nothing here knows what is measured; `scene/driver.rs` says.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor;
use plotters::style::{register_font, FontStyle};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// One series: a name and a value per group (`None`: no bar).
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

type Res = Result<(), Box<dyn std::error::Error>>;

/// Registers the embedded font (idempotent).
fn fonts() -> Res {
    register_font("sans-serif", FontStyle::Normal, FONT).map_err(|_| "bad embedded font")?;
    register_font("sans-serif", FontStyle::Bold, FONT).map_err(|_| "bad embedded font")?;
    Ok(())
}

/// The colour of series `i`, in the driver's system order.
fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(214, 85, 40),
        RGBColor(45, 110, 200),
        RGBColor(55, 155, 80),
        RGBColor(140, 90, 190),
        RGBColor(120, 120, 120),
        RGBColor(200, 160, 30),
    ];
    C[i % C.len()]
}

/// A short label of a value: 1.23M, 456k, 7.8, 0.012.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 && (v / 1e6).fract() == 0.0 {
        format!("{:.0}M", v / 1e6)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else if a >= 1.0 && v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Grouped bars: one group per entry of `groups`, one bar per series, each labelled
/// with its value; `log` selects a log-scale y axis.
pub fn bars(path: &Path, title: &str, y_label: &str, groups: &[String], series: &[Series], log: bool) -> Res {
    fonts()?;
    let values = series.iter().flat_map(|s| s.values.iter().flatten().copied());
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for v in values.filter(|v| *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi <= 0.0 {
        return Err("no positive values to draw".into());
    }
    let (lo, hi) = if log {
        (10f64.powf(lo.log10().floor()), 10f64.powf((hi * 1.5).log10().ceil()))
    } else {
        (0.0, hi * 1.15)
    };
    let width = 260 + 120 * groups.len() as u32 * series.len().max(1) as u32 / 2;
    let root = BitMapBackend::new(path, (width.clamp(900, 1600), 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = groups.len() as f64;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(56)
        .y_label_area_size(90);
    let ns = series.len().max(1) as f64;
    let w = 0.8 / ns;
    // Both arms draw the same bars; only the y coordinate type differs.
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_desc(y_label)
                .y_label_formatter(&|v| short(*v))
                .label_style(("sans-serif", 15))
                .draw()?;
            for (si, s) in series.iter().enumerate() {
                let c = color(si);
                let rects = s.values.iter().enumerate().filter_map(|(gi, v)| {
                    let v = (*v)?;
                    let x0 = gi as f64 + 0.1 + si as f64 * w;
                    Some(Rectangle::new([(x0, lo), (x0 + w * 0.92, v.max(lo))], c.filled()))
                });
                chart
                    .draw_series(rects)?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
                for (gi, v) in s.values.iter().enumerate() {
                    let Some(v) = *v else { continue };
                    let x = gi as f64 + 0.1 + (si as f64 + 0.46) * w;
                    let (px, py) = chart.backend_coord(&(x, v.max(lo)));
                    root.draw(&Text::new(
                        short(v),
                        (px - 4 * short(v).len() as i32, py - 18),
                        ("sans-serif", 13),
                    ))?;
                }
            }
            for (gi, g) in groups.iter().enumerate() {
                let (px, py) = chart.backend_coord(&(gi as f64 + 0.5, lo));
                let style = TextStyle::from(("sans-serif", 15)).pos(text_anchor::Pos::new(
                    text_anchor::HPos::Center,
                    text_anchor::VPos::Top,
                ));
                root.draw(&Text::new(g.clone(), (px, py + 10), style))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .label_font(("sans-serif", 15))
                .draw()?;
        }};
    }
    if log {
        draw!(builder.build_cartesian_2d(0f64..n, (lo..hi).log_scale())?);
    } else {
        draw!(builder.build_cartesian_2d(0f64..n, lo..hi)?);
    }
    root.present()?;
    Ok(())
}

/// Lines on log–log axes: `xs` shared by every series.
pub fn lines(path: &Path, title: &str, x_label: &str, y_label: &str, xs: &[f64], series: &[Series]) -> Res {
    fonts()?;
    let ys = series.iter().flat_map(|s| s.values.iter().flatten().copied());
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for v in ys.filter(|v| *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi <= 0.0 || xs.is_empty() {
        return Err("no positive values to draw".into());
    }
    let (lo, hi) = (10f64.powf(lo.log10().floor()), 10f64.powf((hi * 1.5).log10().ceil()));
    let (x0, x1) = (xs[0] / 2.0, xs[xs.len() - 1] * 2.0);
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d((x0..x1).log_scale(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .label_style(("sans-serif", 15))
        .draw()?;
    for (si, s) in series.iter().enumerate() {
        let c = color(si);
        let pts: Vec<(f64, f64)> = xs
            .iter()
            .zip(&s.values)
            .filter_map(|(x, v)| Some((*x, (*v)?)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(3)));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 5, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}
