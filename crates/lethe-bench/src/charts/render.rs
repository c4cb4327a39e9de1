//! Drawing a [`Chart`] as an SVG document with plotters: axes, scales, tick labels, legends,
//! and the colours that keep a series recognisable across a suite's charts. Nothing here
//! decides what a chart shows; that is the figures' business (the parent module).

use std::fmt;

use plotters::coord::Shift;
use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

use super::{Axis, BarChart, Chart, Legend, LineChart, SIZE, Scale};

/// Height, in categories, of the empty band under a bar chart's bars that holds its legend.
const LEGEND_BAND: f64 = 1.5;

/// The chart as an SVG document.
pub fn render_svg(chart: &Chart) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        match chart {
            Chart::Lines(c) => draw_lines(&root, c)?,
            Chart::Bars(c) => draw_bars(&root, c)?,
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn draw_error(e: impl fmt::Display) -> String {
    format!("drawing failed: {e}")
}

fn color(i: usize) -> RGBColor {
    // Colour-blind-safe (Okabe-Ito), in a fixed order so a system keeps its colour across a
    // suite's charts as long as the systems are listed in the same order.
    const PALETTE: [RGBColor; 8] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(0, 0, 0),
        RGBColor(240, 228, 66),
    ];
    PALETTE[i % PALETTE.len()]
}

/// Data bounds of one axis, padded, and positive when the scale is logarithmic.
fn bounds(axis: &Axis, values: impl Iterator<Item = f64>) -> Result<(f64, f64), String> {
    if let Some(r) = axis.range {
        return Ok(r);
    }
    let log = axis.scale == Scale::Log;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return Err(format!("no data to draw on the axis \"{}\"", axis.label));
    }
    Ok(if log {
        let (lo, hi) = if lo == hi {
            (lo / 2.0, hi * 2.0)
        } else {
            (lo, hi)
        };
        (lo / 1.25, hi * 1.25)
    } else {
        let pad = if hi > lo {
            (hi - lo) * 0.05
        } else {
            hi.abs().max(1.0) * 0.5
        };
        let lo = if lo >= 0.0 {
            (lo - pad).max(0.0)
        } else {
            lo - pad
        };
        (lo, hi + pad)
    })
}

fn draw_lines(root: &DrawingArea<SVGBackend<'_>, Shift>, c: &LineChart) -> Result<(), String> {
    let xs = bounds(
        &c.x,
        c.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(c.markers.iter().map(|m| m.1)),
    )?;
    let mut ys = bounds(
        &c.y,
        c.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
    )?;
    if c.legend == Legend::UpperRight && c.y.range.is_none() {
        // Room above the data for the legend, which would otherwise hide the highest points.
        let rows = (c.series.len() + c.markers.len()) as f64;
        ys.1 = match c.y.scale {
            Scale::Log => ys.1 * (ys.1 / ys.0).powf(rows * 0.08),
            Scale::Linear => ys.1 + (ys.1 - ys.0) * rows * 0.08,
        };
    }
    let (x, y) = (xs.0..xs.1, ys.0..ys.1);
    let x_ticks = || {
        log_ticks(
            xs,
            c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
        )
    };
    let y_ticks = || {
        log_ticks(
            ys,
            c.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        )
    };
    match (c.x.scale, c.y.scale) {
        (Scale::Linear, Scale::Linear) => lines_on(root, c, x, y, ys),
        (Scale::Log, Scale::Linear) => {
            lines_on(root, c, x.log_scale().with_key_points(x_ticks()), y, ys)
        }
        (Scale::Linear, Scale::Log) => {
            lines_on(root, c, x, y.log_scale().with_key_points(y_ticks()), ys)
        }
        (Scale::Log, Scale::Log) => lines_on(
            root,
            c,
            x.log_scale().with_key_points(x_ticks()),
            y.log_scale().with_key_points(y_ticks()),
            ys,
        ),
    }
}

/// Where a log axis is labelled: at the measured values themselves when there are few of them
/// (cache sizes, say, which are the points a reader wants to read off), else at 1, 2 and 5
/// times the powers of ten within `range`.
pub(super) fn log_ticks(range: (f64, f64), values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut distinct: Vec<f64> = Vec::new();
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        if !distinct.contains(&v) {
            if distinct.len() > 8 {
                break;
            }
            distinct.push(v);
        }
    }
    if (2..=8).contains(&distinct.len()) {
        distinct.sort_by(f64::total_cmp);
        return distinct;
    }
    let (lo, hi) = range;
    let mut ticks = Vec::new();
    let mut decade = 10f64.powi(lo.log10().floor() as i32);
    while decade <= hi && ticks.len() < 64 {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t >= lo && t <= hi {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

fn lines_on<X, Y>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    c: &LineChart,
    x: X,
    y: Y,
    ys: (f64, f64),
) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)
        .map_err(draw_error)?;
    let (xf, yf) = (c.x.format, c.y.format);
    chart
        .configure_mesh()
        .x_desc(c.x.label.as_str())
        .y_desc(c.y.label.as_str())
        .x_label_formatter(&|v| xf.tick(*v))
        .y_label_formatter(&|v| yf.tick(*v))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(draw_error)?;
    let log_x = c.x.scale == Scale::Log;
    let log_y = c.y.scale == Scale::Log;
    for (i, s) in c.series.iter().enumerate() {
        let style = color(i).stroke_width(2);
        // A non-finite y is a gap (no data there): the line breaks instead of bridging it.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, y) in &s.points {
            if !y.is_finite() {
                if runs.last().is_some_and(|r| !r.is_empty()) {
                    runs.push(Vec::new());
                }
            } else if x.is_finite() && (!log_x || x > 0.0) && (!log_y || y > 0.0) {
                runs.last_mut().expect("never empty").push((x, y));
            }
        }
        let points = runs.iter().map(Vec::len).sum::<usize>();
        for (r, run) in runs.iter().enumerate() {
            let drawn = chart
                .draw_series(LineSeries::new(run.iter().copied(), style))
                .map_err(draw_error)?;
            if r == 0 {
                drawn
                    .label(s.name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
            if points <= 12 {
                // Few measured points: mark each, so a reader does not mistake the line for
                // data.
                chart
                    .draw_series(run.iter().map(|&p| Circle::new(p, 3, color(i).filled())))
                    .map_err(draw_error)?;
            }
        }
    }
    for (j, (label, at)) in c.markers.iter().enumerate() {
        let style = color(c.series.len() + j).stroke_width(1);
        let at = *at;
        chart
            .draw_series(DashedLineSeries::new([(at, ys.0), (at, ys.1)], 6, 4, style))
            .map_err(draw_error)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(match c.legend {
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::LowerRight => SeriesLabelPosition::LowerRight,
        })
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(draw_error)?;
    Ok(())
}

fn draw_bars(root: &DrawingArea<SVGBackend<'_>, Shift>, c: &BarChart) -> Result<(), String> {
    let n = c.categories.len();
    if n == 0 || c.groups.is_empty() {
        return Err("a bar chart needs at least one category and one group".into());
    }
    let max = c
        .groups
        .iter()
        .flat_map(|g| g.1.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    if max <= 0.0 {
        return Err("no positive value to draw".into());
    }
    // Categories top to bottom in the order given: category i sits at y = n - 1 - i. Below
    // the last one an empty band holds the legend, so it never covers a bar. Asked for no more
    // labels than integers in the span (n + 2) the axis puts its ticks on the integers.
    let y = -0.5 - LEGEND_BAND..n as f64 - 0.5;
    let longest = c.categories.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size((longest as u32 * 8 + 20).clamp(60, 260))
        .build_cartesian_2d(0.0..max * 1.08, y)
        .map_err(draw_error)?;
    let categories = &c.categories;
    let format = c.format;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(c.value_label.as_str())
        .x_label_formatter(&|v| format.tick(*v))
        .y_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() > 1e-6 || i < 0.0 || i as usize >= n {
                return String::new();
            }
            categories[n - 1 - i as usize].clone()
        })
        .y_labels(n + 2)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(draw_error)?;
    let groups = c.groups.len() as f64;
    let band = 0.8 / groups;
    for (g, (name, values)) in c.groups.iter().enumerate() {
        let fill = color(g).filled();
        let rects = values.iter().enumerate().filter_map(move |(i, v)| {
            let v = (*v)?;
            let centre = (n - 1 - i) as f64;
            // Group 0 on top within its category.
            let top = centre + 0.4 - band * g as f64;
            Some(Rectangle::new([(0.0, top), (v.max(0.0), top - band)], fill))
        });
        chart
            .draw_series(rects)
            .map_err(draw_error)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], fill));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(draw_error)?;
    Ok(())
}
