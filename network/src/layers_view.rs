//! Pictures of every layer for one image, as ConvNetJS shows them: one row per point of the
//! network (the input, then each layer's output) with its feature maps in grey, the gradient of
//! a class's score there beside them, and a convolution's filters — the first convolution's as
//! RGB tiles, deeper ones as grey tiles, one per filter and input channel. [`Layout`] says where
//! every value lands, so that tests (and readers) can find a map's pixel.

use std::path::Path;

use ndarray::{Array3, ArrayView3, ArrayView4};
use plotters::style::text_anchor::{HPos, VPos};

use crate::error::{Error, Result};
use crate::infer::TracePoint;
use crate::model::{Layer, Network};
use crate::pictures::{encode_png, paint_png, text};

/// Width of the text column on the left of every row.
const LABEL_W: u32 = 230;
/// Height of the picture's heading.
const HEADING_H: u32 = 50;
/// Height of the captions above a row's panels.
const CAPTION_H: u32 = 22;
/// Space below a row.
const ROW_GAP: u32 = 18;
/// Space between two panels of a row.
const PANEL_GAP: u32 = 28;
/// Space between two maps or tiles of a panel.
const GAP: u32 = 2;
/// A feature map is enlarged to about this many pixels a side.
const MAP_PX: usize = 64;
/// A one-pixel map (a value of a vector) is drawn this large.
const VALUE_PX: u32 = 16;
/// Maps per line of a panel (vectors: values per line).
const MAP_COLS: usize = 8;
/// Values per line of a vector's panel.
const VALUE_COLS: usize = 20;
/// An RGB filter tile is enlarged to about this many pixels a side.
const RGB_TILE_PX: usize = 30;
/// A grey filter tile is enlarged to about this many pixels a side.
const GREY_TILE_PX: usize = 10;

/// The largest layers sheet drawn, in pixels (three bytes each): the seed network's is about
/// 0.6 million; a network of thousands of filters would need gigabytes.
pub const MAX_PIXELS: u64 = 64_000_000;

/// A grid of equal tiles: `count` of them, `cols` a line, each `side` (h, w) image pixels
/// enlarged `scale` times, with [`GAP`] between them; `origin` is its top-left corner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// Top-left corner, in picture pixels.
    pub origin: (u32, u32),
    /// How many tiles.
    pub count: usize,
    /// Tiles per line.
    pub cols: usize,
    /// Each tile's height and width, in its own pixels.
    pub side: (usize, usize),
    /// Picture pixels per tile pixel.
    pub scale: u32,
}

impl Grid {
    fn new(count: usize, cols: usize, side: (usize, usize), scale: u32) -> Self {
        Grid {
            origin: (0, 0),
            count,
            cols: cols.clamp(1, count.max(1)),
            side,
            scale,
        }
    }

    /// The grid's width and height in picture pixels.
    /// Saturating: a huge grid stays huge (see [`MAX_PIXELS`]).
    pub fn size(&self) -> (u32, u32) {
        let to32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let lines = to32(self.count.div_ceil(self.cols));
        let tile = (
            to32(self.side.1).saturating_mul(self.scale),
            to32(self.side.0).saturating_mul(self.scale),
        );
        (
            to32(self.cols)
                .saturating_mul(tile.0.saturating_add(GAP))
                .saturating_sub(GAP),
            lines
                .saturating_mul(tile.1.saturating_add(GAP))
                .saturating_sub(GAP),
        )
    }

    /// The top-left picture pixel of pixel `(y, x)` of tile `tile`: a block of `scale ×
    /// scale` picture pixels starts there.
    pub fn pixel(&self, tile: usize, (y, x): (usize, usize)) -> (u32, u32) {
        let step = (
            self.side.1 as u32 * self.scale + GAP,
            self.side.0 as u32 * self.scale + GAP,
        );
        let (line, col) = ((tile / self.cols) as u32, (tile % self.cols) as u32);
        (
            self.origin.0 + col * step.0 + x as u32 * self.scale,
            self.origin.1 + line * step.1 + y as u32 * self.scale,
        )
    }
}

/// Where one row of the sheet puts its panels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowLayout {
    /// The row's top, in picture pixels.
    pub top: u32,
    /// The feature maps, one tile per channel.
    pub activation: Grid,
    /// The gradient's maps, laid out as `activation`.
    pub gradient: Grid,
    /// The filters of a convolution's output row: one RGB tile per filter, or one grey tile
    /// per filter and input channel (filter `d`, channel `c` is tile `d · channels + c`).
    pub filters: Option<(Grid, Filters)>,
}

/// How a convolution's filters are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filters {
    /// One colour tile per filter: its three input channels as red, green and blue.
    Rgb,
    /// One grey tile per filter and input channel.
    Grey,
}

/// Where everything of a layers sheet lands: the picture's size and one [`RowLayout`] per
/// point of the network (the input first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// One per point: the input, then each layer's output.
    pub rows: Vec<RowLayout>,
}

impl Layout {
    /// The layout for `net`'s points; maps are `[c, h, w]` (a vector `[n]` as `[n, 1, 1]`).
    pub fn of(net: &Network) -> Self {
        let mut top = HEADING_H;
        let mut width = 0;
        let first_conv = net
            .layers
            .iter()
            .position(|l| matches!(l, Layer::Conv { .. }));
        let rows = net
            .shapes
            .iter()
            .enumerate()
            .map(|(i, shape)| {
                let (c, h, w) = maps_of(shape);
                let maps = if h * w == 1 {
                    Grid::new(c, VALUE_COLS, (1, 1), VALUE_PX)
                } else {
                    Grid::new(c, MAP_COLS, (h, w), (MAP_PX / h.max(w)).max(1) as u32)
                };
                let weights = i.checked_sub(1).and_then(|l| match &net.layers[l] {
                    Layer::Conv { w, .. } => Some((w.dim(), Some(l) == first_conv)),
                    _ => None,
                });
                let mut row = RowLayout {
                    top: top.saturating_add(CAPTION_H),
                    activation: maps,
                    gradient: maps,
                    filters: weights.map(|(dims, first)| filter_grid(dims, first)),
                };
                let right = row.place(LABEL_W);
                width = width.max(right);
                let tallest = row.panels().map(|g| g.size().1).max().unwrap_or(0);
                top = top
                    .saturating_add(CAPTION_H)
                    .saturating_add(tallest.max(60))
                    .saturating_add(ROW_GAP);
                row
            })
            .collect();
        Layout {
            size: (width.saturating_add(20), top),
            rows,
        }
    }
}

impl RowLayout {
    /// Places the panels from `left`, one beside the other; returns the right edge.
    fn place(&mut self, left: u32) -> u32 {
        let mut x = left;
        let top = self.top;
        let mut put = |g: &mut Grid| {
            g.origin = (x, top);
            x = x.saturating_add(g.size().0.saturating_add(PANEL_GAP));
        };
        put(&mut self.activation);
        put(&mut self.gradient);
        if let Some((g, _)) = &mut self.filters {
            put(g);
        }
        x.saturating_sub(PANEL_GAP)
    }

    fn panels(&self) -> impl Iterator<Item = &Grid> {
        [&self.activation, &self.gradient]
            .into_iter()
            .chain(self.filters.as_ref().map(|(g, _)| g))
    }
}

/// `[c, h, w]` of a point's shape, a vector `[n]` being `n` maps of one pixel.
fn maps_of(shape: &[usize]) -> (usize, usize, usize) {
    match *shape {
        [c, h, w] => (c, h, w),
        _ => (shape.iter().product(), 1, 1),
    }
}

/// The grid of a convolution's filters `[d, c, k, k]`: RGB tiles for the first convolution of
/// a three-channel input, grey tiles otherwise.
fn filter_grid((d, c, k, kw): (usize, usize, usize, usize), first: bool) -> (Grid, Filters) {
    if first && c == 3 {
        let scale = (RGB_TILE_PX / k.max(kw)).max(1) as u32;
        (Grid::new(d, MAP_COLS, (k, kw), scale), Filters::Rgb)
    } else {
        let scale = (GREY_TILE_PX / k.max(kw)).max(1) as u32;
        (Grid::new(d * c, c, (k, kw), scale), Filters::Grey)
    }
}

/// An RGB picture being painted, pixel blocks only (text comes after, through plotters).
struct Canvas {
    size: (u32, u32),
    pixels: Vec<u8>,
}

impl Canvas {
    /// A white canvas of `size` for the picture `name` showing `what`; refused past
    /// [`MAX_PIXELS`], before anything is allocated.
    fn new(name: &Path, size: (u32, u32), what: &str) -> Result<Self> {
        if u64::from(size.0) * u64::from(size.1) > MAX_PIXELS {
            return Err(Error::Usage(format!(
                "{}: {what} would make a picture of {}×{} pixels, more than {} million",
                name.display(),
                size.0,
                size.1,
                MAX_PIXELS / 1_000_000
            )));
        }
        Ok(Canvas {
            size,
            pixels: vec![255; size.0 as usize * size.1 as usize * 3],
        })
    }

    /// Fills the `scale × scale` block whose top-left corner is `at`.
    fn block(&mut self, at: (u32, u32), scale: u32, rgb: [u8; 3]) {
        for y in at.1..(at.1 + scale).min(self.size.1) {
            for x in at.0..(at.0 + scale).min(self.size.0) {
                let i = (y as usize * self.size.0 as usize + x as usize) * 3;
                self.pixels[i..i + 3].copy_from_slice(&rgb);
            }
        }
    }

    /// Paints maps `[c, h, w]` into `grid`, each value grey between the smallest (black) and
    /// the largest (white) of them all.
    fn maps(&mut self, grid: &Grid, values: ArrayView3<f32>) {
        let shade = shading(values.iter());
        for ((c, y, x), &v) in values.indexed_iter() {
            let g = shade(v);
            self.block(grid.pixel(c, (y, x)), grid.scale, [g, g, g]);
        }
    }

    /// Paints filters `[d, c, k, k]` into `grid`, shaded over the whole layer.
    fn filters(&mut self, grid: &Grid, kind: Filters, w: ArrayView4<f32>) {
        let shade = shading(w.iter());
        let (d, c, k, kw) = w.dim();
        for (f, y, x) in
            (0..d).flat_map(|f| (0..k).flat_map(move |y| (0..kw).map(move |x| (f, y, x))))
        {
            match kind {
                Filters::Rgb => {
                    let rgb = [0, 1, 2].map(|ch| if ch < c { shade(w[[f, ch, y, x]]) } else { 0 });
                    self.block(grid.pixel(f, (y, x)), grid.scale, rgb);
                }
                Filters::Grey => {
                    for ch in 0..c {
                        let g = shade(w[[f, ch, y, x]]);
                        self.block(grid.pixel(f * c + ch, (y, x)), grid.scale, [g, g, g]);
                    }
                }
            }
        }
    }
}

/// Maps a value to a grey level: the smallest of `values` black, the largest white (all black
/// when they are equal or none is finite).
fn shading<'a>(values: impl Iterator<Item = &'a f32>) -> impl Fn(f32) -> u8 {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    move |v| {
        if hi > lo && v.is_finite() {
            ((v - lo) / (hi - lo) * 255.0).round().clamp(0.0, 255.0) as u8
        } else {
            0
        }
    }
}

/// The smallest and largest finite value, for captions.
fn range(values: &Array3<f32>) -> (f32, f32) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        })
}

/// The layers sheet of `trace` (from [`crate::infer::Inference::trace`] on `net`) as PNG
/// bytes, under `heading`; `class` names the class whose score's gradient is shown. `name`
/// names the picture in errors.
pub fn layers_png(
    name: &Path,
    net: &Network,
    trace: &[TracePoint],
    heading: &str,
    class: &str,
) -> Result<Vec<u8>> {
    let layout = Layout::of(net);
    let mut canvas = Canvas::new(name, layout.size, "the layers of this network")?;
    if trace.len() != layout.rows.len() {
        return Err(Error::Usage(format!(
            "a trace of {} points for a network of {}",
            trace.len(),
            layout.rows.len()
        )));
    }
    for (i, (row, point)) in layout.rows.iter().zip(trace).enumerate() {
        canvas.maps(&row.activation, point.activation.view());
        canvas.maps(&row.gradient, point.gradient.view());
        if let (Some((grid, kind)), Some(Layer::Conv { w, .. })) =
            (&row.filters, i.checked_sub(1).map(|l| &net.layers[l]))
        {
            canvas.filters(grid, *kind, w.view());
        }
    }
    paint_png(name, layout.size, canvas.pixels, |area| {
        text(area, name, heading, (20, 14), 20, (HPos::Left, VPos::Top))?;
        for (row, point) in layout.rows.iter().zip(trace) {
            captions(area, name, row, point, class)?;
        }
        Ok(())
    })
}

/// A row's label column and the captions above its panels.
fn captions(
    area: &crate::pictures::Area,
    name: &Path,
    row: &RowLayout,
    point: &TracePoint,
    class: &str,
) -> Result<()> {
    let (c, h, w) = point.activation.dim();
    let (lo, hi) = range(&point.activation);
    let (glo, ghi) = range(&point.gradient);
    let lines = [
        point.name.clone(),
        if h * w == 1 {
            format!("{c} values")
        } else {
            format!("{c} maps of {h}×{w}")
        },
        format!("values {lo:.3} … {hi:.3}"),
        format!("gradient {glo:.2e} … {ghi:.2e}"),
    ];
    for (k, line) in lines.iter().enumerate() {
        let size = if k == 0 { 16 } else { 13 };
        let y = (row.top + k as u32 * 17) as i32;
        text(area, name, line, (20, y), size, (HPos::Left, VPos::Top))?;
    }
    let above = |g: &Grid| (g.origin.0 as i32, (row.top - 4) as i32);
    let bottom = (HPos::Left, VPos::Bottom);
    text(
        area,
        name,
        "activations",
        above(&row.activation),
        13,
        bottom,
    )?;
    let gradient = format!("gradient of score({class})");
    text(area, name, &gradient, above(&row.gradient), 13, bottom)?;
    if let Some((g, kind)) = &row.filters {
        let caption = match kind {
            Filters::Rgb => "filters (RGB)",
            Filters::Grey => "filters (a row each; a column per input channel)",
        };
        text(area, name, caption, above(g), 13, bottom)?;
    }
    Ok(())
}

/// The first convolution's filters as RGB tiles (grey tiles if its input is not three
/// channels), a PNG without text: what the live page shows as training goes on. `name` names
/// the picture in errors.
pub fn filters_png(name: &Path, net: &Network) -> Result<Vec<u8>> {
    let w = net
        .layers
        .iter()
        .find_map(|l| match l {
            Layer::Conv { w, .. } => Some(w),
            _ => None,
        })
        .ok_or_else(|| Error::Usage("the network has no convolution".into()))?;
    let (mut grid, kind) = filter_grid(w.dim(), true);
    grid.scale *= 2;
    grid.origin = (GAP, GAP);
    let size = grid.size();
    let size = (
        size.0.saturating_add(2 * GAP),
        size.1.saturating_add(2 * GAP),
    );
    let mut canvas = Canvas::new(name, size, "the first layer's filters")?;
    canvas.filters(&grid, kind, w.view());
    encode_png(name, size, &canvas.pixels)
}
