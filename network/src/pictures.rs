//! PNG pictures drawn with plotters and the bundled font: training curves, the confusion
//! matrix, and the maps of what the network looks at. Each picture is drawn into memory and
//! written atomically, so a failed drawing never leaves half a file behind.

use std::path::Path;
use std::sync::Once;

use ndarray::{ArrayView2, ArrayView3};
use plotters::chart::DualCoordChartContext;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::config::{LrScaling, TrainConfig};
use crate::disk::write_atomic;
use crate::error::{Error, Result};
use crate::history::{EpochRecord, History};
use crate::infer::Evaluation;

/// What the training curves of one run are drawn from.
#[derive(Clone, Copy, Debug)]
pub struct RunCurves<'a> {
    /// The run's hyper-parameters.
    pub config: &'a TrainConfig,
    /// Its history.
    pub history: &'a History,
}

/// The bundled DejaVu Sans: pictures draw text with it, so no system font is needed.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font under every family name plotters may ask for (criterion's own
/// charts included). Safe to call any number of times.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use plotters::style::{FontStyle, register_font};
        for family in ["sans-serif", "serif", "monospace"] {
            for style in [
                FontStyle::Normal,
                FontStyle::Bold,
                FontStyle::Italic,
                FontStyle::Oblique,
            ] {
                if register_font(family, style, FONT).is_err() {
                    unreachable!("the bundled font parses");
                }
            }
        }
    });
}

/// A picture being drawn.
pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws `size` pixels, white, then `draw` on them, and writes them to `path` as a PNG.
fn render(path: &Path, size: (u32, u32), draw: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
    let white = vec![255u8; size.0 as usize * size.1 as usize * 3];
    write_atomic(path, &paint_png(path, size, white, draw)?)
}

/// Draws with `draw` over `pixels` (RGB, row after row, `size` pixels), as PNG bytes; `name`
/// names the picture in errors.
pub(crate) fn paint_png(
    name: &Path,
    size: (u32, u32),
    mut pixels: Vec<u8>,
    draw: impl FnOnce(&Area) -> Result<()>,
) -> Result<Vec<u8>> {
    register_fonts();
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(|e| drawing(name, e))?;
    }
    encode_png(name, size, &pixels)
}

/// RGB `pixels` of `size` as PNG bytes; `name` names the picture in errors.
pub fn encode_png(name: &Path, size: (u32, u32), pixels: &[u8]) -> Result<Vec<u8>> {
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        pixels,
        size.0,
        size.1,
        image::ColorType::Rgb8,
    )
    .map_err(|e| drawing(name, e))?;
    Ok(png)
}

/// A drawing error, naming the picture.
pub(crate) fn drawing(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io(format!("cannot draw {}: {e}", path.display()))
}

/// Converts any drawing error into ours, naming the file.
pub(crate) trait Drawn<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T, E: std::fmt::Display> Drawn<T> for std::result::Result<T, E> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| drawing(path, e))
    }
}

/// Draws `s` at `at` in the bundled font.
pub(crate) fn text(
    area: &Area,
    path: &Path,
    s: &str,
    at: (i32, i32),
    size: u32,
    anchor: (HPos, VPos),
) -> Result<()> {
    let style = TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(anchor.0, anchor.1));
    area.draw(&Text::new(s.to_string(), at, style)).at(path)
}

/// A picture's title, centred at the top of `area`.
fn title(area: &Area, path: &Path, s: &str, top: i32, size: u32) -> Result<()> {
    let centre = area.dim_in_pixel().0 as i32 / 2;
    text(
        area,
        path,
        s,
        (centre, top),
        size,
        (HPos::Center, VPos::Top),
    )
}

/// Size of `curves.png` and of comparisons.
pub const CURVES_SIZE: (u32, u32) = (1200, 640);

/// Line colours of compared runs: twenty distinct on white (a twenty-first run takes the
/// first's again).
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
    RGBColor(0, 0, 128),
    RGBColor(128, 0, 0),
    RGBColor(0, 100, 0),
    RGBColor(75, 0, 130),
    RGBColor(184, 134, 11),
    RGBColor(0, 128, 128),
    RGBColor(255, 20, 147),
    RGBColor(85, 107, 47),
    RGBColor(70, 130, 180),
    RGBColor(210, 105, 30),
];

/// One run's hyper-parameters, in a line; the rate's scaling with the batch only when not
/// linear, warm-up, label smoothing and the average of the weights only when on.
pub fn describe(c: &TrainConfig) -> String {
    let schedule = clap::ValueEnum::to_possible_value(&c.schedule)
        .expect("every schedule has a name")
        .get_name()
        .to_string();
    let mut pieces = vec![
        format!("batch {}", c.batch_size),
        format!("lr {} {schedule}", c.lr),
    ];
    // The recipe's optional features only where they are on, so the line stays short.
    match c.lr_scaling {
        LrScaling::Linear => {}
        LrScaling::None => pieces.push("rate unscaled".into()),
        LrScaling::Sqrt => pieces.push("rate × √(batch / 32)".into()),
    }
    if c.warmup > 0.0 {
        pieces.push(format!("warm-up {}", c.warmup));
    }
    pieces.push(format!("momentum {}", c.momentum));
    pieces.push(format!("decay {}", c.weight_decay));
    if c.label_smoothing > 0.0 {
        pieces.push(format!("smoothing {}", c.label_smoothing));
    }
    pieces.push(match c.augment {
        true => format!("shift {}", c.shift),
        false => "no augmentation".into(),
    });
    if c.ema > 0.0 {
        pieces.push(format!("EMA {}", c.ema));
    }
    pieces.push(format!("seed {}", c.seed));
    pieces.push(format!("{} epochs", c.epochs));
    pieces.join(", ")
}

/// Per-step losses at fractional epochs: step k of epoch e sits at `e − 1 + k / steps`, where
/// `steps` is the length of a completed epoch (or of the epoch so far when none is complete).
fn loss_points(run: RunCurves) -> Vec<(f64, f64)> {
    let history = run.history;
    let count = |e: usize| history.steps.iter().filter(|s| s.epoch == e).count();
    let per_epoch = history
        .epochs
        .first()
        .map_or(history.steps.len(), |e| count(e.epoch))
        .max(1) as f64;
    let mut in_epoch = (0, 0usize);
    history
        .steps
        .iter()
        .map(|s| {
            in_epoch = if s.epoch == in_epoch.0 {
                (s.epoch, in_epoch.1 + 1)
            } else {
                (s.epoch, 1)
            };
            (
                s.epoch.saturating_sub(1) as f64 + in_epoch.1 as f64 / per_epoch,
                f64::from(s.loss),
            )
        })
        .collect()
}

/// The mean of each point with the `window − 1` before it, as the seed's `print_error` averages
/// the loss over windows; the first points average what there is.
fn smoothed(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            sum += y;
            if i >= window {
                sum -= points[i - window].1;
            }
            (x, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

/// Window of the smoothed loss: a two-hundredth of a long run, a twentieth of a short one (up
/// to 25 steps), at least one step.
fn window_of(steps: usize) -> usize {
    (steps / 200).max((steps / 20).min(25)).max(1)
}

/// The raw per-step loss: light, so that the smoothed line reads over it.
const RAW_LOSS: RGBColor = RGBColor(190, 208, 232);

/// Training loss and test accuracy against epochs. One run: its raw per-step loss (faint), the
/// loss smoothed, train and test accuracy per epoch, its hyper-parameters under the title, a
/// legend half-way up the chart's right side; several runs: each run's smoothed loss and test
/// accuracy in its own colour, named with the hyper-parameters in which the runs differ in a
/// key to the right of the chart (so that no legend hides their late epochs), the picture
/// widened to hold it ([`curves_size`]). `runs` pairs a name with a run's curves.
pub fn draw_curves(path: &Path, runs: &[(String, RunCurves)]) -> Result<()> {
    if runs.is_empty() {
        return Err(Error::Usage("no run to plot".into()));
    }
    let single = runs.len() == 1;
    let runs = with_differences(runs);
    // The loss as drawn: one run's every step (smoothed over it), several runs' smoothed only,
    // so that one run's spikes do not stretch the axis of the others.
    let series: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|(_, s)| loss_points(*s))
        .map(|p| match single {
            true => p,
            false => smoothed(&p, window_of(p.len())),
        })
        .collect();
    let names: Vec<&str> = runs.iter().map(|(name, _)| name.as_str()).collect();
    render(path, curves_size(&names), |root| {
        let (top, body) = root.split_vertically(if single { 70 } else { 50 });
        title(&top, path, &heading(&runs), 10, 24)?;
        let mut chart = match single {
            true => {
                title(&top, path, &describe(runs[0].1.config), 42, 16)?;
                curves_chart(&body, path, &runs, &series)?
            }
            false => {
                let (body, key) = body.split_horizontally(CURVES_SIZE.0);
                draw_key(&key, path, &names)?;
                curves_chart(&body, path, &runs, &series)?
            }
        };
        for (i, ((_, state), points)) in runs.iter().zip(&series).enumerate() {
            match single {
                true => draw_one_run(&mut chart, path, state.history, points)?,
                false => {
                    let colour = PALETTE[i % PALETTE.len()];
                    let loss = points.iter().copied();
                    chart
                        .draw_series(LineSeries::new(loss, colour.stroke_width(3)))
                        .at(path)?;
                    draw_held_out(&mut chart, path, state.history, colour, false)?;
                }
            }
        }
        if !single {
            return Ok(());
        }
        // Half-way up the right side: late epochs put the loss low and the accuracy high.
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .at(path)
    })
}

/// Each run's name, with the pieces of its settings ([`describe`]) the others do not share
/// when there are several runs.
fn with_differences<'a>(runs: &[(String, RunCurves<'a>)]) -> Vec<(String, RunCurves<'a>)> {
    let settings: Vec<String> = runs.iter().map(|(_, s)| describe(s.config)).collect();
    let shared = |piece: &str| settings.iter().all(|s| s.split(", ").any(|p| p == piece));
    runs.iter()
        .zip(&settings)
        .map(|((name, state), all)| {
            let differing: Vec<&str> = all.split(", ").filter(|p| !shared(p)).collect();
            match differing.is_empty() || runs.len() == 1 {
                true => (name.clone(), *state),
                false => (format!("{name} ({})", differing.join(", ")), *state),
            }
        })
        .collect()
}

/// The title of the curves: one run's name and last held-out figure, or how many runs.
fn heading(runs: &[(String, RunCurves)]) -> String {
    let [(label, state)] = runs else {
        return format!("{} runs compared", runs.len());
    };
    match state.history.epochs.last() {
        Some(e) => format!("{label}: {} after {} epochs", e.held_out(), e.epoch),
        None => format!("{label}: no epoch complete yet"),
    }
}

/// The axes of the curves in `area`: epochs across, the loss of `series` on the left, accuracy
/// in percent on the right.
fn curves_chart<'a>(
    area: &Area<'a>,
    path: &Path,
    runs: &[(String, RunCurves)],
    series: &[Vec<(f64, f64)>],
) -> Result<Curves<'a, 'a>> {
    let max_epoch = runs
        .iter()
        .zip(series)
        .map(|((_, s), p)| {
            p.last()
                .map_or(0.0, |l| l.0)
                .max(s.history.epochs.len() as f64)
        })
        .fold(1.0f64, f64::max);
    let max_loss = series
        .iter()
        .flatten()
        .map(|p| p.1)
        .filter(|l| l.is_finite())
        .fold(0.1f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .right_y_label_area_size(64)
        .build_cartesian_2d(0f64..max_epoch, 0f64..max_loss * 1.05)
        .at(path)?
        .set_secondary_coord(0f64..max_epoch, 0f64..100.0);
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_label_formatter(&|x| format!("{x}"))
        .y_desc("training loss (cross-entropy)")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .at(path)?;
    chart
        .configure_secondary_axes()
        .y_desc("accuracy (%)")
        .y_label_formatter(&|y| format!("{y}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .at(path)?;
    Ok(chart)
}

/// One run's curves, each labelled for the legend: the raw per-step `points` of the loss, the
/// loss smoothed, validation and test accuracy, training accuracy.
fn draw_one_run<'a>(
    chart: &mut Curves<'a, 'a>,
    path: &Path,
    history: &History,
    points: &[(f64, f64)],
) -> Result<()> {
    chart
        .draw_series(LineSeries::new(points.iter().copied(), RAW_LOSS))
        .at(path)?
        .label("loss per step")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RAW_LOSS));
    let window = window_of(points.len());
    let smoothing = match window {
        1 => "per step".to_string(),
        w => format!("mean of {w} steps"),
    };
    let colour = PALETTE[0];
    chart
        .draw_series(LineSeries::new(
            smoothed(points, window),
            colour.stroke_width(3),
        ))
        .at(path)?
        .label(format!("loss, {smoothing}"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3)));
    draw_held_out(chart, path, history, PALETTE[1], true)?;
    let train_colour = PALETTE[2];
    chart
        .draw_secondary_series(LineSeries::new(
            history
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, 100.0 * f64::from(e.train_accuracy))),
            train_colour.stroke_width(2),
        ))
        .at(path)?
        .label("train accuracy, augmented (right axis)")
        .legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], train_colour.stroke_width(2))
        });
    Ok(())
}

/// A run's validation accuracy (a dashed line through dots) and test accuracy (dots) per
/// epoch, in `colour`; `labelled` names them for the legend.
fn draw_held_out<'a>(
    chart: &mut Curves<'a, 'a>,
    path: &Path,
    history: &History,
    colour: RGBColor,
    labelled: bool,
) -> Result<()> {
    for (what, dashed, of) in [
        (
            "validation",
            true,
            (|e| e.validation_accuracy) as fn(&EpochRecord) -> _,
        ),
        ("test", false, |e| e.test_accuracy),
    ] {
        let points: Vec<(f64, f64)> = history
            .epochs
            .iter()
            .filter_map(|e| of(e).map(|a| (e.epoch as f64, 100.0 * f64::from(a))))
            .collect();
        let name = labelled.then(|| format!("{what} accuracy (right axis)"));
        draw_accuracy(chart, path, &points, dashed, colour, name)?;
    }
    Ok(())
}

/// Font size of the key of several runs' curves.
const KEY_FONT: u32 = 15;

/// Layout of that key, in pixels: the first row's centre, the rows' spacing, where a row's
/// swatch starts and ends, where its text starts, and the margin right of the longest text.
const KEY_TOP: i32 = 40;
const KEY_ROW: i32 = 24;
const KEY_SWATCH: (i32, i32) = (16, 46);
const KEY_TEXT: i32 = 56;
const KEY_MARGIN: i32 = 24;

/// What the line styles of several runs' curves mean, below the runs in their key.
const KEY_STYLES: [&str; 3] = [
    "solid line: training loss (left axis)",
    "dashed line through dots: validation accuracy (right axis)",
    "dots alone: test accuracy (right axis)",
];

/// Size of the curves of the runs named `names`: [`CURVES_SIZE`] for one run; for several,
/// widened by a key as wide as the longest of their names and of [`KEY_STYLES`], and taller
/// than [`CURVES_SIZE`] if its rows need it.
pub fn curves_size(names: &[&str]) -> (u32, u32) {
    if names.len() < 2 {
        return CURVES_SIZE;
    }
    register_fonts();
    let font = ("sans-serif", KEY_FONT).into_font();
    let widest = names
        .iter()
        .chain(&KEY_STYLES)
        .map(|s| font.box_size(s).map_or(0, |(w, _)| w))
        .max()
        .unwrap_or(0);
    // Below the title's 50 pixels: the runs, a blank row, the styles, and a row's margin.
    let rows = (names.len() + 1 + KEY_STYLES.len() + 1) as i32;
    let height = 50 + KEY_TOP + KEY_ROW * rows;
    (
        CURVES_SIZE.0 + (KEY_TEXT + KEY_MARGIN) as u32 + widest,
        CURVES_SIZE.1.max(height as u32),
    )
}

/// The key of several runs' curves, in `area`: each run's colour and name, then what the line
/// styles mean.
fn draw_key(area: &Area, path: &Path, names: &[&str]) -> Result<()> {
    let row = |i: usize| KEY_TOP + KEY_ROW * i as i32;
    let swatch = |y: i32| vec![(KEY_SWATCH.0, y), (KEY_SWATCH.1, y)];
    let dots = |y: i32, xs: &[i32]| -> Result<()> {
        xs.iter().try_for_each(|&x| {
            area.draw(&Circle::new((KEY_SWATCH.0 + x, y), 3, KEY_GREY.filled()))
                .at(path)
        })
    };
    for (i, name) in names.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        area.draw(&PathElement::new(swatch(row(i)), colour.stroke_width(3)))
            .at(path)?;
        text(area, path, name, (KEY_TEXT, row(i)), KEY_FONT, LEFT_MIDDLE)?;
    }
    let first = names.len() + 1;
    area.draw(&PathElement::new(
        swatch(row(first)),
        KEY_GREY.stroke_width(3),
    ))
    .at(path)?;
    let dashed = plotters::element::DashedPathElement::new(
        swatch(row(first + 1)),
        8,
        5,
        KEY_GREY.stroke_width(2),
    );
    area.draw(&dashed).at(path)?;
    dots(row(first + 1), &[4, 26])?;
    dots(row(first + 2), &[4, 15, 26])?;
    for (k, what) in KEY_STYLES.iter().enumerate() {
        text(
            area,
            path,
            what,
            (KEY_TEXT, row(first + k)),
            KEY_FONT,
            LEFT_MIDDLE,
        )?;
    }
    Ok(())
}

/// The colour of the style key's lines.
const KEY_GREY: RGBColor = RGBColor(80, 80, 80);

/// Text anchored at its left end, centred vertically.
const LEFT_MIDDLE: (HPos, VPos) = (HPos::Left, VPos::Center);

/// Size of `confusion.png`.
pub const CONFUSION_SIZE: (u32, u32) = (1060, 860);

/// The chart of [`draw_curves`]: loss on the left axis, accuracy on the right.
type Curves<'a, 'b> = DualCoordChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<RangedCoordf64, RangedCoordf64>,
    Cartesian2d<RangedCoordf64, RangedCoordf64>,
>;

/// One accuracy series on the right axis: a dashed line through dots, or dots alone.
fn draw_accuracy<'a>(
    chart: &mut Curves<'a, 'a>,
    path: &Path,
    points: &[(f64, f64)],
    dashed: bool,
    colour: RGBColor,
    name: Option<String>,
) -> Result<()> {
    if points.is_empty() {
        return Ok(());
    }
    let style = colour.stroke_width(2);
    let dots = points.iter().map(|&p| Circle::new(p, 3, colour.filled()));
    let series = match dashed {
        true => {
            chart
                .draw_secondary_series(DashedLineSeries::new(points.to_vec(), 8, 5, style))
                .at(path)?;
            chart.draw_secondary_series(dots).at(path)?
        }
        false => chart.draw_secondary_series(dots).at(path)?,
    };
    if let Some(name) = name {
        series.label(name).legend(move |(x, y)| match dashed {
            true => PathElement::new(vec![(x, y), (x + 20, y)], style).into_dyn(),
            false => Circle::new((x + 10, y), 3, colour.filled()).into_dyn(),
        });
    }
    Ok(())
}

/// The confusion matrix as a heat map: rows true classes, columns predictions, each cell's
/// count written in it and coloured by its share of the row; per-class accuracy beside it.
pub fn draw_confusion(path: &Path, e: &Evaluation, classes: &[&str], heading: &str) -> Result<()> {
    let n = classes.len();
    let cell = 68i32;
    let (left, top) = (150i32, 110i32);
    render(path, CONFUSION_SIZE, |root| {
        title(root, path, heading, 12, 22)?;
        text(
            root,
            path,
            "predicted class",
            (left + cell * n as i32 / 2, 50),
            17,
            (HPos::Center, VPos::Top),
        )?;
        let rows_label = (left - 140, top - 30);
        text(
            root,
            path,
            "true class ↓",
            rows_label,
            17,
            (HPos::Left, VPos::Top),
        )?;
        for (j, name) in classes.iter().enumerate() {
            let x = left + cell * j as i32 + cell / 2;
            text(
                root,
                path,
                name,
                (x, top - 8),
                13,
                (HPos::Center, VPos::Bottom),
            )?;
        }
        let accuracy_x = left + cell * n as i32 + 20;
        text(
            root,
            path,
            "accuracy",
            (accuracy_x, top - 8),
            15,
            (HPos::Left, VPos::Bottom),
        )?;
        let per_class = e.per_class();
        for (i, name) in classes.iter().enumerate() {
            let y = top + cell * i as i32;
            text(
                root,
                path,
                name,
                (left - 10, y + cell / 2),
                15,
                (HPos::Right, VPos::Center),
            )?;
            let total = e.confusion[i].iter().sum::<u32>().max(1) as f64;
            for (j, &count) in e.confusion[i].iter().enumerate() {
                let x = left + cell * j as i32;
                let share = f64::from(count) / total;
                let colour = ViridisRGB.get_color(share as f32);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell - 1, y + cell - 1)],
                    colour.filled(),
                ))
                .at(path)?;
                let ink = if share > 0.6 { BLACK } else { WHITE };
                let style = TextStyle::from(("sans-serif", 16).into_font())
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                root.draw(&Text::new(
                    count.to_string(),
                    (x + cell / 2, y + cell / 2),
                    style,
                ))
                .at(path)?;
            }
            text(
                root,
                path,
                &format!("{:.1}%", 100.0 * per_class[i]),
                (accuracy_x, y + cell / 2),
                16,
                (HPos::Left, VPos::Center),
            )?;
        }
        let bottom = top + cell * n as i32 + 24;
        text(
            root,
            path,
            &format!(
                "overall accuracy {:.2}% · mean loss {:.4} · colour: share of the true class's images",
                100.0 * e.accuracy,
                e.loss
            ),
            (left + cell * n as i32 / 2, bottom),
            16,
            (HPos::Center, VPos::Top),
        )
    })
}

/// A map of the input, with how to read it.
pub struct Map<'a> {
    /// `[h, w]`, each value scaled to [0, 1] where 1 marks the strongest evidence.
    pub heat: ArrayView2<'a, f32>,
    /// The panel's caption.
    pub caption: String,
    /// Colour-bar labels at heat 0 (bottom) and 1 (top).
    pub ends: (String, String),
}

/// Pixels per image pixel in the maps' panels.
fn scale_of(h: usize, w: usize) -> usize {
    (256 / h.max(w)).max(1)
}

/// Size of a maps picture for an `h × w` image with `maps` maps.
pub fn maps_size(h: usize, w: usize, maps: usize) -> (u32, u32) {
    let s = scale_of(h, w);
    let panel_w = (w * s) as u32;
    (
        40 + panel_w + maps as u32 * (panel_w + 130),
        (h * s) as u32 + 150,
    )
}

/// The image enlarged (nearest neighbour) beside each map drawn as a heat map over a grey copy
/// of the image, with a colour bar; `image` is `[3, h, w]` bytes.
pub fn draw_maps(path: &Path, image: ArrayView3<u8>, heading: &str, maps: &[Map]) -> Result<()> {
    write_atomic(path, &maps_png(path, image, heading, maps)?)
}

/// The picture of [`draw_maps`] as PNG bytes; `path` names it in errors.
pub fn maps_png(
    path: &Path,
    image: ArrayView3<u8>,
    heading: &str,
    maps: &[Map],
) -> Result<Vec<u8>> {
    let (h, w) = (image.shape()[1], image.shape()[2]);
    let s = scale_of(h, w) as i32;
    let (panel_w, panel_h) = (w as i32 * s, h as i32 * s);
    let size = maps_size(h, w, maps.len());
    let top = 100;
    let white = vec![255u8; size.0 as usize * size.1 as usize * 3];
    paint_png(path, size, white, |root| {
        title(root, path, heading, 14, 20)?;
        let rgb = |r: usize, q: usize| [0, 1, 2].map(|c| image[[c, r, q]]);
        let mut x0 = 20;
        let caption = format!("the image ({s}× enlarged)");
        text(
            root,
            path,
            &caption,
            (x0 + panel_w / 2, top - 10),
            15,
            (HPos::Center, VPos::Bottom),
        )?;
        for r in 0..h {
            for q in 0..w {
                let [red, green, blue] = rgb(r, q);
                block(root, path, (x0, top), s, (r, q), RGBColor(red, green, blue))?;
            }
        }
        for map in maps {
            x0 += panel_w + 40;
            text(
                root,
                path,
                &map.caption,
                (x0 + panel_w / 2 + 35, top - 10),
                15,
                (HPos::Center, VPos::Bottom),
            )?;
            for r in 0..h {
                for q in 0..w {
                    let [red, green, blue] = rgb(r, q).map(f64::from);
                    let grey = 0.299 * red + 0.587 * green + 0.114 * blue;
                    let heat = ViridisRGB.get_color(map.heat[[r, q]].clamp(0.0, 1.0));
                    let mix = |c: u8| (0.35 * grey + 0.65 * f64::from(c)).round() as u8;
                    let colour = RGBColor(mix(heat.0), mix(heat.1), mix(heat.2));
                    block(root, path, (x0, top), s, (r, q), colour)?;
                }
            }
            // The colour bar, heat 1 at the top.
            let bar_x = x0 + panel_w + 10;
            for y in 0..panel_h {
                let heat = 1.0 - y as f32 / (panel_h - 1).max(1) as f32;
                root.draw(&Rectangle::new(
                    [(bar_x, top + y), (bar_x + 16, top + y + 1)],
                    ViridisRGB.get_color(heat).filled(),
                ))
                .at(path)?;
            }
            text(
                root,
                path,
                &map.ends.1,
                (bar_x + 20, top),
                13,
                (HPos::Left, VPos::Top),
            )?;
            text(
                root,
                path,
                &map.ends.0,
                (bar_x + 20, top + panel_h),
                13,
                (HPos::Left, VPos::Bottom),
            )?;
            x0 += 90;
        }
        Ok(())
    })
}

/// Fills image pixel `(r, q)` as an `s × s` block of a panel whose corner is `origin`.
fn block(
    area: &Area,
    path: &Path,
    origin: (i32, i32),
    s: i32,
    (r, q): (usize, usize),
    colour: RGBColor,
) -> Result<()> {
    let (x, y) = (origin.0 + q as i32 * s, origin.1 + r as i32 * s);
    area.draw(&Rectangle::new([(x, y), (x + s, y + s)], colour.filled()))
        .at(path)
}

/// Bars of `values` (percentages), one row per label, the best in another colour, each value
/// written at its bar's end: a sweep's validation accuracy per trial.
pub fn draw_bars(path: &Path, heading: &str, rows: &[(String, f64)]) -> Result<()> {
    let height = 90 + 34 * rows.len().max(1) as u32;
    let best = rows.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
    let lo = rows.iter().map(|r| r.1).fold(best, f64::min);
    // From a little below the worst, so that differences of a point show.
    let floor = (lo - (best - lo).max(1.0)).max(0.0).floor();
    render(path, (1200, height), |root| {
        let (top, body) = root.split_vertically(50);
        title(&top, path, heading, 12, 20)?;
        let n = rows.len() as f64;
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(420)
            .build_cartesian_2d(floor..100f64.min(best + 2.0).max(floor + 1.0), 0f64..n)
            .at(path)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("validation accuracy (%)")
            .y_labels(0)
            .label_style(("sans-serif", 14))
            .draw()
            .at(path)?;
        for (i, (label, v)) in rows.iter().enumerate() {
            let y = n - i as f64;
            let colour = if *v == best { PALETTE[1] } else { PALETTE[0] };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(floor, y - 0.8), (*v, y - 0.2)],
                    colour.filled(),
                )))
                .at(path)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!(" {v:.2}"),
                    (*v, y - 0.5),
                    TextStyle::from(("sans-serif", 14).into_font())
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )))
                .at(path)?;
            // The label left of the axis, in the root's pixels.
            let (x, y) = chart.backend_coord(&(floor, y - 0.5));
            text(
                root,
                path,
                label,
                (x - 8, y),
                14,
                (HPos::Right, VPos::Center),
            )?;
        }
        Ok(())
    })
}
