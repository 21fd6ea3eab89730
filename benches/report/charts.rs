//! PNG charts, drawn with plotters and the bundled font.

use std::path::Path;

use kernels::Technique;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use study::{
    BATCH_SWEEPS, Case, Pass, SEED_NETWORK, SIZE_SWEEP_GROUP, TABLE_BATCHES, sweep_batches,
    sweep_group, sweep_sides,
};

use crate::data::{NumpyPeer, Timings, TorchPeer, cases_of_kind};

/// Forward + backward per layer at batch 5, all techniques.
pub const HEADLINE: &str = "headline.png";
/// Time per example against batch size.
pub const BATCH_SWEEP: &str = "batch-sweep.png";
/// Time against input side.
pub const SIZE_SWEEP: &str = "size-sweep.png";
/// numpy's and Rust's technique ladders side by side.
pub const LADDERS: &str = "numpy-rust.png";

/// The chart of one layer.
pub fn layer_file(case: &Case) -> String {
    format!("{}.png", case.name)
}

const SIZE: (u32, u32) = (1100, 560);
const PYTORCH: RGBColor = RGBColor(120, 120, 120);

fn color(t: Technique) -> RGBColor {
    match t {
        Technique::Naive => RGBColor(214, 39, 40),
        Technique::PerOutput => RGBColor(255, 127, 14),
        Technique::AxisReduce => RGBColor(44, 160, 44),
        Technique::Im2colGemm => RGBColor(31, 119, 180),
        Technique::Direct => RGBColor(148, 103, 189),
    }
}

/// One bar series: a name, a colour, one value (µs) per category.
type Bars = (String, RGBColor, Vec<Option<f64>>);

/// Draws every chart into `out`; returns how many.
pub fn draw_all(
    t: &Timings,
    torch: Option<&TorchPeer>,
    np: Option<&NumpyPeer>,
    out: &Path,
) -> Result<usize, String> {
    let mut count = 0;
    for case in &SEED_NETWORK {
        let categories: Vec<(Pass, usize)> = Pass::ALL
            .into_iter()
            .flat_map(|p| TABLE_BATCHES.map(|b| (p, b)))
            .collect();
        let labels: Vec<String> = categories
            .iter()
            .map(|(p, b)| format!("{} b={b}", p.name()))
            .collect();
        let mut series: Vec<Bars> = Technique::ALL
            .into_iter()
            .map(|tq| {
                (
                    tq.name().to_string(),
                    color(tq),
                    categories
                        .iter()
                        .map(|&(p, b)| t.layer(case, p, tq, b).map(us))
                        .collect(),
                )
            })
            .collect();
        if let Some(peer) = torch {
            series.push((
                "PyTorch".into(),
                PYTORCH,
                categories
                    .iter()
                    .map(|&(p, b)| peer.layer(case, p, b).map(us))
                    .collect(),
            ));
        }
        bar_chart(
            &out.join(layer_file(case)),
            &format!("{}: {}", case.name, case.title),
            &labels,
            &series,
        )?;
        count += 1;
    }
    let labels: Vec<String> = SEED_NETWORK.iter().map(|c| c.name.to_string()).collect();
    let step = |case: &Case, f: &dyn Fn(&Case, Pass) -> Option<f64>| {
        Some(us(f(case, Pass::Forward)? + f(case, Pass::Backward)?))
    };
    let mut series: Vec<Bars> = Technique::ALL
        .into_iter()
        .map(|tq| {
            let values = SEED_NETWORK
                .iter()
                .map(|c| step(c, &|c, p| t.layer(c, p, tq, 5)))
                .collect();
            (tq.name().to_string(), color(tq), values)
        })
        .collect();
    if let Some(peer) = torch {
        series.push((
            "PyTorch".into(),
            PYTORCH,
            SEED_NETWORK
                .iter()
                .map(|c| step(c, &|c, p| peer.layer(c, p, 5)))
                .collect(),
        ));
    }
    bar_chart(
        &out.join(HEADLINE),
        "Forward + backward at batch 5, per layer of the seed network",
        &labels,
        &series,
    )?;
    count += 1;

    let path = out.join(BATCH_SWEEP);
    let root = BitMapBackend::new(&path, (SIZE.0, SIZE.1 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let batches = sweep_batches(t.quick);
    let xs: Vec<f64> = batches.iter().map(|&b| b as f64).collect();
    for ((name, techniques), area) in BATCH_SWEEPS.iter().zip(root.split_evenly((1, 2))) {
        let lines: Vec<Line> = Pass::ALL
            .into_iter()
            .flat_map(|pass| {
                techniques.iter().map(move |&tq| {
                    let values = batches
                        .iter()
                        .map(|&b| {
                            t.get(&sweep_group(name, pass), tq.name(), b)
                                .map(|ns| us(ns) / b as f64)
                        })
                        .collect();
                    (
                        format!("{tq} {}", pass.name()),
                        color(tq),
                        pass == Pass::Backward,
                        values,
                    )
                })
            })
            .collect();
        line_panel(
            &area,
            &format!("{name}: time per example"),
            "batch size",
            &xs,
            &lines,
        )?;
    }
    root.present().map_err(err)?;
    count += 1;

    let path = out.join(SIZE_SWEEP);
    let root = BitMapBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let sides = sweep_sides(t.quick);
    let xs: Vec<f64> = sides.iter().map(|&n| n as f64).collect();
    let lines: Vec<Line> = Technique::ALL
        .into_iter()
        .map(|tq| {
            (
                tq.name().to_string(),
                color(tq),
                false,
                sides
                    .iter()
                    .map(|&n| t.get(SIZE_SWEEP_GROUP, tq.name(), n).map(us))
                    .collect(),
            )
        })
        .collect();
    line_panel(
        &root,
        "Convolution forward 16 → 20, f5, batch 1, by input side",
        "input side (pixels)",
        &xs,
        &lines,
    )?;
    root.present().map_err(err)?;
    count += 1;
    if let Some(np) = np {
        ladders(t, np, &out.join(LADDERS))?;
        count += 1;
    }
    Ok(count)
}

/// Colours of the layers in the ladder chart.
const LAYER_COLOURS: [RGBColor; 4] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Two panels, numpy then Rust, on one time scale: each layer with products (convolutions and
/// the fully connected layer) as a line over the techniques at batch 5, forward solid and
/// backward dashed.
fn ladders(t: &Timings, np: &NumpyPeer, path: &Path) -> Result<(), String> {
    let root = BitMapBackend::new(path, (SIZE.0, SIZE.1 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let cases: Vec<&Case> = cases_of_kind("conv").chain(cases_of_kind("fc")).collect();
    let lines = |time: &dyn Fn(&Case, Pass, Technique) -> Option<f64>| -> Vec<Line> {
        cases
            .iter()
            .zip(LAYER_COLOURS)
            .flat_map(|(case, colour)| {
                Pass::ALL.into_iter().map(move |pass| {
                    let values = Technique::ALL
                        .iter()
                        .map(|&tq| time(case, pass, tq).map(us));
                    (
                        format!("{} {}", case.name, pass.name()),
                        colour,
                        pass == Pass::Backward,
                        values.collect(),
                    )
                })
            })
            .collect()
    };
    let numpy = lines(&|c, p, tq| np.layer(c, p, tq, 5));
    let rust = lines(&|c, p, tq| t.layer(c, p, tq, 5));
    let bounds = log_bounds(numpy.iter().chain(&rust).flat_map(|l| &l.3));
    let names: Vec<&str> = Technique::ALL.iter().map(|tq| tq.name()).collect();
    let areas = root.split_evenly((1, 2));
    for ((title, lines), area) in [
        ("numpy on this machine (im2col column: np.einsum)", numpy),
        ("Rust", rust),
    ]
    .iter()
    .zip(areas)
    {
        category_panel(&area, title, &names, bounds, lines)?;
    }
    root.present().map_err(err)
}

/// Lines over named categories on a log time axis with fixed `bounds` (µs).
fn category_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    title: &str,
    names: &[&str],
    (lo, hi): (f64, f64),
    lines: &[Line],
) -> Result<(), String> {
    let n = names.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.3f64..(n as f64 - 0.7), (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                names[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_desc("time at batch 5 (µs, log scale)")
        .y_label_formatter(&|y| format!("{y}"))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
    draw_lines(&mut chart, &xs, lines)
}

fn us(ns: f64) -> f64 {
    ns / 1e3
}

fn err(e: impl std::fmt::Display) -> String {
    format!("drawing a chart: {e}")
}

/// Log range a bit wider than the values.
fn log_bounds<'a>(values: impl Iterator<Item = &'a Option<f64>>) -> (f64, f64) {
    let (lo, hi) = values
        .flatten()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() {
        (lo / 2.0, hi * 2.0)
    } else {
        (0.1, 10.0)
    }
}

fn bar_chart(
    path: &Path,
    title: &str,
    categories: &[String],
    series: &[Bars],
) -> Result<(), String> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (lo, hi) = log_bounds(series.iter().flat_map(|s| &s.2));
    let n = categories.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n as f64, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("time (µs, log scale)")
        .y_label_formatter(&|y| format!("{y}"))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    let width = 0.8 / series.len() as f64;
    for (si, (name, colour, values)) in series.iter().enumerate() {
        let colour = *colour;
        chart
            .draw_series(values.iter().enumerate().filter_map(|(ci, v)| {
                let x0 = ci as f64 + 0.1 + si as f64 * width;
                v.map(|v| Rectangle::new([(x0, lo), (x0 + width * 0.9, v)], colour.filled()))
            }))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    // Category names under their bars, placed in pixels: the x axis has no ticks of its own.
    let style = TextStyle::from(("sans-serif", 15)).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, label) in categories.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, lo));
        root.draw(&Text::new(label.as_str(), (x, y + 8), style.clone()))
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// One line: name, colour, dashed, one value (µs) per x.
type Line = (String, RGBColor, bool, Vec<Option<f64>>);

fn line_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    title: &str,
    x_desc: &str,
    xs: &[f64],
    lines: &[Line],
) -> Result<(), String> {
    let (lo, hi) = log_bounds(lines.iter().flat_map(|l| &l.3));
    let (x_lo, x_hi) = (xs[0] / 1.3, xs[xs.len() - 1] * 1.3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("time (µs, log scale)")
        .x_label_formatter(&|x| format!("{x}"))
        .y_label_formatter(&|y| format!("{y}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    draw_lines(&mut chart, xs, lines)
}

/// Draws `lines` over `xs` with a legend whose samples are dashed like their lines.
fn draw_lines<'a, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    xs: &[f64],
    lines: &[Line],
) -> Result<(), String> {
    for (name, colour, dashed, values) in lines {
        let colour = *colour;
        let points: Vec<(f64, f64)> = xs
            .iter()
            .zip(values)
            .filter_map(|(&x, v)| Some((x, (*v)?)))
            .collect();
        let style = ShapeStyle::from(&colour).stroke_width(2);
        let series = if *dashed {
            chart
                .draw_series(DashedLineSeries::new(points.clone(), 8, 5, style))
                .map_err(err)?
        } else {
            chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(err)?
        };
        let dashed = *dashed;
        series.label(name).legend(move |(x, y)| {
            let style = ShapeStyle::from(&colour).stroke_width(2);
            // A dashed line's sample is two dashes with a gap, a solid one is unbroken.
            let second = if dashed { x + 12 } else { x + 7 };
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (7, 0)], style)
                + PathElement::new(vec![(second - x, 0), (19, 0)], style)
        });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    Ok(())
}
