//! SVG charts of the benchmark results, drawn with `plotters`' SVG backend and no font library: text goes
//! into the SVG as `<text>` elements for the viewer to render, so no system font is read when drawing.
//!
//! Every chart carries a footer naming the machine, the commit and the date it was measured on.

use std::path::Path;

use anyhow::{anyhow, Context as _};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Colour of a cache's line: fixed per name, so a cache looks the same in every chart.
fn colour(name: &str) -> RGBColor {
    match name {
        "strata" => RGBColor(31, 119, 180),
        "quick_cache" => RGBColor(255, 127, 14),
        "moka" => RGBColor(44, 160, 44),
        "TinyUFO" => RGBColor(148, 103, 189),
        "hashbrown" => RGBColor(127, 127, 127),
        "OPT" => RGBColor(0, 0, 0),
        "strata (weight-bounded)" => RGBColor(23, 190, 207),
        "timer alone" => RGBColor(188, 189, 34),
        "jemalloc" => RGBColor(31, 119, 180),
        "system" => RGBColor(214, 39, 40),
        _ => RGBColor(140, 86, 75),
    }
}

/// What every chart says about where its figures come from.
#[derive(Clone, Debug)]
pub struct Provenance {
    /// One line: machine, commit, date.
    pub footer: String,
}

/// One line of a line chart.
pub struct Line {
    /// Legend name (also picks the colour).
    pub name: String,
    /// Points in data units (before any log transform).
    pub points: Vec<(f64, f64)>,
    /// Dashed (used for limits: OPT, hashbrown).
    pub dashed: bool,
}

/// A line chart's axes.
pub struct Axes {
    /// Chart title.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Draw the y axis on a log10 scale.
    pub y_log: bool,
    /// Labels for x values; `None` prints the value.
    pub x_format: Option<fn(f64) -> String>,
    /// Y range to show (data units); `None` fits the data.
    pub y_range: Option<(f64, f64)>,
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// Paints `root` white, writes the provenance footer along its bottom 30 pixels, and returns the area
/// above it for the chart.
fn footed<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    provenance: &Provenance,
) -> anyhow::Result<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>> {
    root.fill(&WHITE).map_err(plot_err)?;
    let (height, footer_height) = (root.dim_in_pixel().1, 30);
    let (plot_area, footer) = root.split_vertically(height.saturating_sub(footer_height));
    footer
        .draw_text(
            &provenance.footer,
            &("sans-serif", 13).into_font().color(&RGBColor(90, 90, 90)),
            (12, 6),
        )
        .map_err(plot_err)?;
    Ok(plot_area)
}

/// Draws `lines` into an SVG file at `path`.
pub fn line_chart(
    path: &Path,
    axes: &Axes,
    lines: &[Line],
    provenance: &Provenance,
) -> anyhow::Result<()> {
    let transform = |y: f64| if axes.y_log { y.max(1e-9).log10() } else { y };
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (y_min, y_max) = match axes.y_range {
        Some((lo, hi)) => (transform(lo), transform(hi)),
        None => {
            let ys = lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| transform(p.1)));
            let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
                (lo.min(y), hi.max(y))
            });
            if axes.y_log {
                (lo.floor(), hi.ceil())
            } else {
                // Hit ratios differ by points: fit the data, with a margin, instead of starting at 0.
                let margin = ((hi - lo) * 0.08).max(0.005);
                ((lo - margin).max(0.0), hi + margin)
            }
        }
    };
    anyhow::ensure!(
        x_min.is_finite() && y_max.is_finite(),
        "no points to draw in {}",
        axes.title
    );
    let x_pad = ((x_max - x_min) * 0.03).max(1e-9);

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    let plot_area = footed(&root, provenance)?;
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(&axes.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(78)
        .build_cartesian_2d((x_min - x_pad)..(x_max + x_pad), y_min..y_max)
        .map_err(plot_err)?;
    let y_format = |v: &f64| {
        if axes.y_log {
            human(10f64.powf(*v))
        } else {
            human(*v)
        }
    };
    let x_format = |v: &f64| match axes.x_format {
        Some(f) => f(*v),
        None => human(*v),
    };
    chart
        .configure_mesh()
        .x_desc(axes.x_label.as_str())
        .y_desc(axes.y_label.as_str())
        .y_label_formatter(&y_format)
        .x_label_formatter(&x_format)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_err)?;
    for line in lines {
        let c = colour(&line.name);
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .map(|&(x, y)| (x, transform(y)))
            .collect();
        let style = c.stroke_width(2);
        let drawn = if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(points.clone(), 8, 5, style))
                .map_err(plot_err)?
        } else {
            chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(plot_err)?
        };
        drawn
            .label(line.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(3)));
        if points.len() <= 12 {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(plot_err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(plot_err)?;
    root.present()
        .map_err(plot_err)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One bar of a bar chart.
pub struct Bar {
    /// Label under the bar (also picks the colour).
    pub label: String,
    /// Height in data units.
    pub value: f64,
}

/// Draws vertical bars, each labelled with its value, into an SVG file at `path`.
pub fn bar_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    bars: &[Bar],
    provenance: &Provenance,
) -> anyhow::Result<()> {
    let top = bars.iter().map(|b| b.value).fold(0.0, f64::max) * 1.15;
    let width = (170 * bars.len() as u32).max(900);
    let root = SVGBackend::new(path, (width, 560)).into_drawing_area();
    let plot_area = footed(&root, provenance)?;
    let n = bars.len() as f64;
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(78)
        .build_cartesian_2d(0.0..n, 0.0..top.max(1.0))
        .map_err(plot_err)?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let x_format = move |v: &f64| {
        let i = (*v - 0.5).round();
        if i >= 0.0 && (v - 0.5 - i).abs() < 1e-6 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len() * 2 + 1)
        .x_label_formatter(&x_format)
        .y_desc(y_label)
        .y_label_formatter(&|v| human(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_err)?;
    for (i, bar) in bars.iter().enumerate() {
        let x = i as f64;
        let c = colour(bar.label.split([' ', ',']).next().unwrap_or(""));
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x + 0.15, 0.0), (x + 0.85, bar.value)],
                c.filled(),
            )))
            .map_err(plot_err)?;
        let centred = TextStyle::from(("sans-serif", 14).into_font())
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{:.1}", bar.value),
                (x + 0.5, bar.value + top * 0.01),
                centred,
            )))
            .map_err(plot_err)?;
    }
    root.present()
        .map_err(plot_err)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A number as a short label: 1.2M, 340k, 12, 0.25.
pub fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        trim(format!("{:.2}", v / 1e9)) + "G"
    } else if a >= 1e6 {
        trim(format!("{:.2}", v / 1e6)) + "M"
    } else if a >= 1e4 {
        trim(format!("{:.1}", v / 1e3)) + "k"
    } else if a >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else {
        // Three decimals, so ticks 0.005 apart (a hit ratio axis zoomed in) stay distinct.
        trim(format!("{v:.3}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_labels() {
        assert_eq!(human(0.25), "0.25");
        assert_eq!(human(0.035), "0.035");
        assert_eq!(human(2.5), "2.5");
        assert_eq!(human(12.0), "12");
        assert_eq!(human(340_000.0), "340k");
        assert_eq!(human(1_250_000.0), "1.25M");
        assert_eq!(human(20_000_000.0), "20M");
    }

    #[test]
    fn charts_are_written_as_svg_with_their_text() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let provenance = Provenance {
            footer: "test machine, commit abc, 2026-12-06".to_owned(),
        };
        let path = dir.path().join("lines.svg");
        let axes = Axes {
            title: "hit ratio".to_owned(),
            x_label: "capacity".to_owned(),
            y_label: "ratio".to_owned(),
            y_log: true,
            x_format: None,
            y_range: None,
        };
        let lines = [
            Line {
                name: "strata".to_owned(),
                points: vec![(1.0, 10.0), (2.0, 300.0)],
                dashed: false,
            },
            Line {
                name: "OPT".to_owned(),
                points: vec![(1.0, 20.0), (2.0, 900.0)],
                dashed: true,
            },
        ];
        line_chart(&path, &axes, &lines, &provenance)?;
        let svg = std::fs::read_to_string(&path)?;
        assert!(
            svg.starts_with("<svg") && svg.contains("test machine, commit abc"),
            "{}",
            &svg[..200.min(svg.len())]
        );
        assert!(svg.contains("\nstrata\n") && svg.contains("\nOPT\n"));

        let bars = dir.path().join("bars.svg");
        bar_chart(
            &bars,
            "bytes",
            "bytes per entry",
            &[Bar {
                label: "strata".to_owned(),
                value: 58.0,
            }],
            &provenance,
        )?;
        assert!(std::fs::read_to_string(&bars)?.contains("\n58.0\n"));
        Ok(())
    }
}
