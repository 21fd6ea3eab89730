//! The direct convolution's building blocks: a zero-padded copy of input planes laid out so
//! that every read is a contiguous vector, filters packed in blocks, and two register-blocked
//! kernels in [`Lanes`]: one computes output planes (the forward pass, and the input gradient
//! as the forward pass of a dilated dy), one computes filter taps (the weight gradient).
//!
//! Vectors run along output columns: lane `l` of a vector at column `j0` is column `j0 + l`.
//! Rows are padded to whole vectors, so that no read or write needs a scalar tail. Rows of at
//! most half a vector (conv3's 8 columns, with 16 lanes) are packed two to a vector, so that
//! no lane computes padding.

use ndarray::{ArrayView3, ArrayView4, ArrayViewMut2, Axis};

use crate::activation::LEAKY_RELU_SLOPE;
use crate::isa::Isa;
#[cfg(target_arch = "x86_64")]
use crate::lanes::{Avx2, Avx512};
use crate::lanes::{Lanes, Portable};

/// The fewest output channels the forward kernel computes together, and the block of output
/// gradient planes the weight gradient reads: dy is laid out in whole blocks of it.
const FILTERS: usize = 4;

/// The most output channels the forward kernel computes together at AVX2: each filter value,
/// broadcast once, feeds `P` output vectors, and each input vector loaded feeds one
/// accumulator per filter. With 16 registers, 6 filters × 2 vectors are 12 accumulators
/// (+ 2 inputs + 1 broadcast = 15), which hide the multiply-add latency better than 8.
/// Measured on a Zen 3 core (`network bench --profile 16`, alternating builds, 2 rounds, all
/// blocks of one width): per multiply-add, blocks of 5 filters ran 7–8% faster than blocks of 4
/// (conv2 forward 767–774 → 713 µs), blocks of 6 about 10% (832 µs for 24 filters' work
/// where 20 are needed). The other levels keep blocks of [`FILTERS`], as they were measured.
const WIDEST_AVX2: usize = 6;

/// The seed's taps per filter row, for which the forward kernel has its own instance.
const SEED_TAPS: usize = 5;

/// The weight gradient's working set per group of images at AVX2, in f32s: the group's planes
/// of dy for one block of filters and one input plane. Every (filter block, channel, filter
/// row) sweeps them again, so they should stay in the core's 32 KiB L1 data cache: half of it.
/// The other levels sum the whole batch in one group, as they were measured: this budget was
/// not measured at AVX-512, where conv1 would take one image a group (a horizontal sum and a
/// store of dw per image).
/// Measured on a Zen 3 core at AVX2 (`network bench --profile 16`, alternating builds, two
/// rounds): conv2's backward pass at 16 images 1,831–1,842 µs with the whole batch in one
/// group, 1,698–1,717 with this budget (4 images a group), 1,756–1,787 with half of it.
#[cfg(target_arch = "x86_64")]
const GROUP_FLOATS: usize = 4096;

/// What the forward kernel applies to each output before it stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// Nothing: the convolution's output.
    Identity,
    /// The seed's leaky ReLU, `max(v, slope·v)` ([`LEAKY_RELU_SLOPE`]), as the activation layer
    /// computes it, applied in registers: no second pass over the output.
    LeakyRelu,
}

impl Activation {
    /// The activation of each lane of `a`. The leaky ReLU is bit for bit the activation
    /// layer's `max(x, slope·x)`: slope·x as a multiply-add to −0 (adding −0 changes no value,
    /// −0 included, and the product is rounded once), and the larger of the two taken with
    /// `x` first, so that on a tie (±0) or a NaN x the result is `slope·x`, the same value.
    #[inline(always)]
    fn apply<V: Lanes>(self, a: V) -> V {
        match self {
            Activation::Identity => a,
            Activation::LeakyRelu => a.max(V::splat(-0.0).mul_add(V::splat(LEAKY_RELU_SLOPE), a)),
        }
    }
}

/// The work of one call of the kernels: [`Correlation::planes`] or [`Correlation::taps`].
enum Work<'a, 'o> {
    /// [`Correlation::planes`], or [`Correlation::planes_pooled`] if `pooled`.
    Planes {
        src: &'a [f32],
        packed: &'a [f32],
        bias: Option<&'a [f32]>,
        activation: Activation,
        pooled: bool,
        out: ArrayViewMut2<'o, f32>,
    },
    /// [`Correlation::taps`].
    Taps {
        srcs: &'a [f32],
        dys: &'a [f32],
        dw: &'a mut [f32],
    },
}

/// The arguments of [`Correlation::planes`] and [`Correlation::planes_pooled`], as one value
/// for their instances.
type PlanesArgs<'a, 'o> = (
    &'a [f32],
    &'a [f32],
    Option<&'a [f32]>,
    Activation,
    ArrayViewMut2<'o, f32>,
);

/// The arguments of [`Correlation::planes_block`]: the source, one block's packed filters, its
/// biases, the activation and its output planes.
type BlockArgs<'a, 'o> = (
    &'a [f32],
    &'a [f32],
    Option<&'a [f32]>,
    Activation,
    &'o mut [f32],
);

/// A correlation of `c` input planes with `kh × kw` windows at `stride`, giving `h2 × w2`
/// outputs per plane, and the layout of its source buffer `[c, rows, row]`: output `(i, j)`
/// at tap `(ki, kj)` reads element `(i·stride + ki)·row + kj·tap + j` of its plane.
/// With stride 1, `tap` is 1 and a buffer row is a padded input row; with a larger stride a
/// buffer row holds, for each tap `kj`, the columns that tap reads, so reads stay contiguous.
///
/// The outputs of a plane are computed as `positions` vectors: with one row per vector,
/// position `p` is row `p / blocks` from column `(p % blocks)·N`; with two, rows `2p` and
/// `2p + 1` (the last row twice if `h2` is odd), each in half of the lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Correlation {
    /// The level the kernels run at, supported by this CPU.
    isa: Isa,
    /// Lanes per vector at that level.
    lanes: usize,
    c: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    h2: usize,
    w2: usize,
    /// Output rows per vector: 1, or 2 when a row fits in half a vector.
    pack: usize,
    /// Vectors per output row (with `pack` 1).
    blocks: usize,
    /// Output vectors per plane.
    positions: usize,
    /// Lanes given to one output row: `blocks·lanes`, or `lanes / 2` when packed.
    width: usize,
    /// Input rows the outputs reach: `(h2 − 1)·stride + kh`.
    rows: usize,
    /// Input columns the outputs reach: `(w2 − 1)·stride + kw`.
    cols: usize,
    row: usize,
    tap: usize,
}

/// One block of filters of the forward kernel: filters `o0 .. o0 + filters` of the output,
/// packed `width` wide (zero filters past `filters`) from element `packed` of the packed
/// filters.
#[derive(Clone, Copy, Debug)]
struct FilterBlock {
    o0: usize,
    filters: usize,
    width: usize,
    packed: usize,
}

/// Where the vector at one position reads and writes: the first output row and column of
/// each half (the same row for both halves when unpacked).
#[derive(Clone, Copy)]
struct Position {
    rows: [usize; 2],
    j0: usize,
}

impl Correlation {
    /// The correlation at level `isa`.
    ///
    /// # Panics
    /// If this CPU cannot run `isa` (the kernels' soundness rests on this check).
    pub fn new(
        isa: Isa,
        c: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        (h2, w2): (usize, usize),
    ) -> Self {
        if let Err(e) = isa.checked() {
            panic!("{e}");
        }
        let lanes = match isa {
            Isa::Avx512 => 16,
            Isa::Avx2 | Isa::Portable => 8,
        };
        let pack = if 2 * w2 <= lanes && h2 > 1 { 2 } else { 1 };
        let blocks = if pack == 2 { 1 } else { w2.div_ceil(lanes) };
        let width = if pack == 2 { lanes / 2 } else { blocks * lanes };
        let (row, tap) = if stride == 1 {
            (width + kw - 1, 1)
        } else {
            (kw * width, width)
        };
        Self {
            isa,
            lanes,
            c,
            kh,
            kw,
            stride,
            h2,
            w2,
            pack,
            blocks,
            positions: if pack == 2 {
                h2.div_ceil(2)
            } else {
                h2 * blocks
            },
            width,
            rows: (h2 - 1) * stride + kh,
            cols: (w2 - 1) * stride + kw,
            row,
            tap,
        }
    }

    fn plane(&self) -> usize {
        self.rows * self.row
    }

    /// Elements of one source buffer.
    pub fn source_len(&self) -> usize {
        self.c * self.plane()
    }

    /// Elements of one image's output gradient laid out as [`Correlation::taps`] reads it: one
    /// vector per position, `outs` rounded up to whole filter blocks.
    fn lanes_len(&self, outs: usize) -> usize {
        outs.next_multiple_of(FILTERS) * self.positions * self.lanes
    }

    /// The output rows and first column of position `p` (clamped to the last).
    #[inline(always)]
    fn position(&self, p: usize) -> Position {
        let p = p.min(self.positions - 1);
        if self.pack == 2 {
            Position {
                rows: [2 * p, (2 * p + 1).min(self.h2 - 1)],
                j0: 0,
            }
        } else {
            let i = p / self.blocks;
            Position {
                rows: [i, i],
                j0: p % self.blocks * self.lanes,
            }
        }
    }

    /// Offsets in a source plane of the input that position `at` reads at tap (0, 0), for
    /// each half.
    #[inline(always)]
    fn offsets(&self, at: &Position) -> [usize; 2] {
        at.rows.map(|r| r * self.stride * self.row + at.j0)
    }

    /// Loads the vector of input `offset` after `starts`: from `starts[0]` (with `PACK` 1),
    /// or half from each (with `PACK` 2).
    ///
    /// # Safety
    /// `starts[0] + offset` must start a whole readable vector (with `PACK` 1), or each of
    /// `starts[h] + offset` half of one (with `PACK` 2).
    #[inline(always)]
    unsafe fn load_input<V: Lanes, const PACK: usize>(
        starts: &[*const f32; 2],
        offset: usize,
    ) -> V {
        // SAFETY: the caller guarantees the span read.
        unsafe {
            if PACK == 2 {
                V::load_halves(starts[0].add(offset), starts[1].add(offset))
            } else {
                V::load(starts[0].add(offset))
            }
        }
    }

    /// Writes planes `x` `[c, h, w]` into a source buffer: element `(r, q)` lands at input
    /// position `(r·spread + top, q·spread + left)` of the correlation (dropped if the
    /// outputs never reach it), every other position is 0. The forward pass places x with
    /// spread 1 at `(pad, pad)`; the input gradient places dy spread by the stride.
    #[inline(always)]
    pub fn fill(
        &self,
        x: ArrayView3<f32>,
        spread: usize,
        (top, left): (isize, isize),
        buf: &mut [f32],
    ) {
        let buf = &mut buf[..self.source_len()];
        buf.fill(0.0);
        let (_, h, w) = x.dim();
        let (rows, cols) = (
            landing(h, spread, top, self.rows),
            landing(w, spread, left, self.cols),
        );
        if rows.is_empty() || cols.is_empty() {
            return; // nothing lands: all zeros
        }
        let at = |r: usize, offset: isize| (r as isize * spread as isize + offset) as usize;
        for (plane, dst) in x.outer_iter().zip(buf.chunks_exact_mut(self.plane())) {
            for r in rows.clone() {
                let line = &mut dst[at(r, top) * self.row..][..self.row];
                let src = plane.row(r);
                if self.tap == 1 && spread == 1 {
                    // The common case: one copy per row.
                    let dst = &mut line[at(cols.start, left)..][..cols.len()];
                    match src.as_slice() {
                        Some(src) => dst.copy_from_slice(&src[cols.clone()]),
                        None => dst
                            .iter_mut()
                            .zip(cols.clone())
                            .for_each(|(d, q)| *d = src[q]),
                    }
                    continue;
                }
                for q in cols.clone() {
                    let v = at(q, left);
                    for kj in 0..self.kw.min(v + 1) {
                        // Output column j reads input column j·stride + kj at tap kj.
                        let j = (v - kj) / self.stride;
                        if (v - kj) % self.stride == 0 && j < self.w2 {
                            line[kj * self.tap + j] = src[q];
                        }
                    }
                }
            }
        }
    }

    /// The output gradients dy `[b, outs, h2, w2]` as [`Correlation::taps`] reads them: each
    /// output row at a multiple of [`Correlation::width`] lanes, zeros in the lanes past it, zero
    /// planes up to a whole filter block. That is dy itself when its rows already fill their
    /// lanes and its planes whole blocks (the seed's three convolutions); otherwise a copy in
    /// `buf`, of [`Correlation::dy_copy_len`] elements.
    #[inline(always)]
    pub fn dy_lanes<'a>(&self, dy: ArrayView4<'a, f32>, buf: &'a mut [f32]) -> &'a [f32] {
        let outs = dy.len_of(Axis(1));
        if self.dy_copy_len(&dy) == 0 {
            return dy.to_slice().expect("checked standard layout");
        }
        let plane_len = self.positions * self.lanes;
        let buf = &mut buf[..dy.len_of(Axis(0)) * self.lanes_len(outs)];
        buf.fill(0.0);
        let per_image = outs.next_multiple_of(FILTERS);
        for (plane, src) in buf
            .chunks_exact_mut(plane_len)
            .enumerate()
            .filter(|(n, _)| n % per_image < outs)
            .map(|(_, plane)| plane)
            .zip(dy.outer_iter().flat_map(|image| image.into_outer_iter()))
        {
            for (line, src) in plane.chunks_mut(self.width).zip(src.rows()) {
                line.iter_mut().zip(src).for_each(|(d, &s)| *d = s);
            }
        }
        buf
    }

    /// Elements of the copy [`Correlation::dy_lanes`] makes of dy: 0 when it reads dy itself.
    pub fn dy_copy_len(&self, dy: &ArrayView4<f32>) -> usize {
        let (b, outs) = (dy.len_of(Axis(0)), dy.len_of(Axis(1)));
        let whole = self.w2 == self.width
            && self.h2 * self.width == self.positions * self.lanes
            && outs.is_multiple_of(FILTERS)
            && dy.is_standard_layout();
        if whole { 0 } else { b * self.lanes_len(outs) }
    }

    /// The forward pass over one source: `out[o, i, j] = bias[o] + Σ filters[o, c, ki, kj] ·
    /// input(c, i·stride + ki, j·stride + kj)`, out `[outs, h2·w2]` (overwritten), filters
    /// packed by this correlation's [`Correlation::pack_filters`] (the blocks depend on the
    /// level); no bias means 0; `activation` applied to each output before it is stored.
    pub fn planes(
        &self,
        src: &[f32],
        packed: &[f32],
        (bias, activation): (Option<&[f32]>, Activation),
        out: ArrayViewMut2<f32>,
    ) {
        self.run(Work::Planes {
            src,
            packed,
            bias,
            activation,
            pooled: false,
            out,
        });
    }

    /// Whether [`Correlation::planes_pooled`] runs here: one output row a vector, an even
    /// number of rows and columns, and a level it was measured at (AVX2 and portable; at
    /// AVX-512, where it was not, the caller pools the planes apart).
    pub fn poolable(&self) -> bool {
        self.pack == 1 && self.h2.is_multiple_of(2) && self.w2.is_multiple_of(2) && pools(self.isa)
    }

    /// [`Correlation::planes`] followed by a 2×2 max pooling at stride 2, in registers: out
    /// `[outs, (h2 / 2)·(w2 / 2)]` (overwritten) holds each window's maximum of the activated
    /// outputs, by the pooling's tie rule; the outputs themselves are not stored. The two
    /// output vectors of a filter are rows `2i` and `2i + 1` at the same columns, so that a
    /// window's four taps meet in two registers.
    ///
    /// # Panics
    /// Unless [`Correlation::poolable`].
    pub fn planes_pooled(
        &self,
        src: &[f32],
        packed: &[f32],
        (bias, activation): (Option<&[f32]>, Activation),
        out: ArrayViewMut2<f32>,
    ) {
        assert!(
            self.poolable(),
            "planes_pooled on an unpoolable correlation"
        );
        self.run(Work::Planes {
            src,
            packed,
            bias,
            activation,
            pooled: true,
            out,
        });
    }

    /// Runs `work` at the level of this correlation.
    fn run(&self, work: Work) {
        match self.isa {
            // SAFETY: `new` checked that this CPU has AVX-512F.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { run_avx512(self, work) },
            // SAFETY: `new` checked that this CPU has AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { run_avx2(self, work) },
            _ => run_portable(self, work),
        }
    }

    /// `work` in lanes `V`. The register blocking of each level: `P` output vectors per filter
    /// in the forward kernel (`F × P` accumulators for a block of `F` filters, `P` input vectors
    /// and a broadcast weight live; `F` from [`Correlation::filter_blocks`]), and `T` taps
    /// of `TF` filters per filter row in the weight gradient (`TF × T` accumulators, `TF` dy
    /// vectors and an input vector live).
    ///
    /// - AVX-512, 32 registers: `P` = 4, `F` = 4 (16 + 4 + 1 = 21), `T` = 5, `TF` = 4 (20 + 4 +
    ///   1 = 25).
    /// - AVX2, 16 registers: `P` = 2, `F` up to 6 (12 + 2 + 1 = 15; see [`WIDEST_AVX2`]).
    ///   Measured with `F` = 4: with `P` = 3 (12 + 3 + 1 = 16)
    ///   LLVM spilled accumulators to the stack, and the forward passes ran 8–25% slower (conv2
    ///   forward at 16 images: 1757 → 1508 µs with `P` = 2). `T` = 5, `TF` = 2 (10 + 2 + 1 = 13):
    ///   a whole 5-tap row, 7 loads per 10 multiply-adds, against `T` = 2, `TF` = 4 (8 + 4 + 1),
    ///   which split a row into 2 + 2 + 1 taps and loaded 17 vectors per 20 multiply-adds: the
    ///   backward passes at 16 images on a Zen 3 core (`network bench --profile 16`, alternating
    ///   builds): conv1 871–906 → 558 µs, conv2 2,382–2,429 → 1,832, conv3 693–744 → 590–599.
    /// - Portable, 8 lanes as AVX2 but two SSE2 registers each, so that these counts double and
    ///   spill on x86-64: `P` = 2, `T` = 2, `TF` = 4 (`T` = 5, `TF` = 2 measured no faster).
    ///
    /// `G`: the weight gradient's budget per group of images in f32s ([`GROUP_FLOATS`] at AVX2,
    /// where it was measured), or 0 for the whole batch in one group. `W`: the most filters a
    /// forward block holds at the level ([`widest`]), so that no wider block is compiled for it.
    /// `PL`: whether the level pools in registers ([`pools`]), so that no pooled instance is
    /// compiled where none runs.
    ///
    /// One instance of the kernels per level, each compiled inside a `#[target_feature]` function
    /// of its level (`run_avx512`, `run_avx2`) or for the baseline target (`run_portable`).
    #[inline(always)]
    fn run_in<
        V: Lanes,
        const P: usize,
        const T: usize,
        const TF: usize,
        const G: usize,
        const W: usize,
        const PL: bool,
    >(
        &self,
        work: Work,
    ) {
        assert_eq!(W, widest(self.isa), "the widest filter block of the level");
        assert_eq!(PL, pools(self.isa), "whether the level pools in registers");
        assert_eq!(V::N, self.lanes, "the lanes of the level");
        match work {
            Work::Planes {
                src,
                packed,
                bias,
                activation,
                pooled,
                out,
            } => {
                // One instance per packing, so that the loads inside are fixed, and one for
                // the seed's 5 taps a row at stride 1, whose tap loop unrolls into loads at
                // fixed offsets (measured on a Zen 3 core at AVX2, `network bench --profile
                // 16`, alternating builds: the three forward passes 3–4% faster, conv2's
                // 786 → 760 µs).
                // Pooled planes only unpacked, and only at the levels that pool (`PL`, so that
                // no instance is made for the others; see `poolable`).
                let args = (src, packed, bias, activation, out);
                match (self.pack, self.kw == SEED_TAPS && self.tap == 1, pooled) {
                    (_, true, true) if PL => self.planes_packed::<V, 1, P, SEED_TAPS, W, PL>(args),
                    (_, false, true) if PL => self.planes_packed::<V, 1, P, 0, W, PL>(args),
                    (_, _, true) => unreachable!("planes_pooled checked poolable"),
                    (2, true, _) => self.planes_packed::<V, 2, P, SEED_TAPS, W, false>(args),
                    (2, false, _) => self.planes_packed::<V, 2, P, 0, W, false>(args),
                    (_, true, _) => self.planes_packed::<V, 1, P, SEED_TAPS, W, false>(args),
                    (_, false, _) => self.planes_packed::<V, 1, P, 0, W, false>(args),
                }
            }
            Work::Taps { srcs, dys, dw } => self.taps_in::<V, T, TF, G>(srcs, dys, dw),
        }
    }

    /// [`Correlation::planes`] (or [`Correlation::planes_pooled`] with `POOL`) with `PACK`
    /// rows a vector, `P` vectors a filter, and `KW` taps a row at stride 1 if not 0 (any row
    /// and stride with 0): one call of [`Correlation::planes_block`] per filter block, at the
    /// block's width (at most `W`, the level's widest: no instance is made for wider blocks).
    #[inline(always)]
    fn planes_packed<
        V: Lanes,
        const PACK: usize,
        const P: usize,
        const KW: usize,
        const W: usize,
        const POOL: bool,
    >(
        &self,
        (src, packed, bias, activation, mut out): PlanesArgs,
    ) {
        let outs = out.nrows();
        let out = out
            .as_slice_mut()
            .expect("outputs are staged in standard layout");
        let ckk = self.c * self.kh * self.kw;
        let plane = self.out_plane::<POOL>();
        assert!(src.len() >= self.source_len(), "source buffer too short");
        assert_eq!(out.len(), outs * plane);
        assert!(bias.is_none_or(|b| b.len() >= outs), "a bias per filter");
        for block in self.filter_blocks(outs, ckk) {
            let filters = &packed[block.packed..][..block.width * ckk];
            let bias = bias.map(|b| &b[block.o0..block.o0 + block.filters]);
            let out = &mut out[block.o0 * plane..][..block.filters * plane];
            let args = (src, filters, bias, activation, out);
            // One instance per width filter_blocks gives: FILTERS to WIDEST_AVX2.
            match block.width {
                4 => self.planes_block::<V, PACK, P, KW, 4, POOL>(args),
                5 if W >= 5 => self.planes_block::<V, PACK, P, KW, 5, POOL>(args),
                6 if W >= 6 => self.planes_block::<V, PACK, P, KW, 6, POOL>(args),
                w => unreachable!("filter blocks are 4 to 6 wide, not {w}"),
            }
        }
    }

    /// Elements of one output plane: `h2·w2`, or `(h2 / 2)·(w2 / 2)` pooled.
    fn out_plane<const POOL: bool>(&self) -> usize {
        if POOL {
            (self.h2 / 2) * (self.w2 / 2)
        } else {
            self.h2 * self.w2
        }
    }

    /// The output row and first column of position `p` of [`Correlation::planes_pooled`]
    /// (clamped to the last pair): positions `2q` and `2q + 1` are rows `2i` and `2i + 1` at
    /// the same columns, pair `q` the `q`-th vector of outputs of the pooled rows in order.
    #[inline(always)]
    fn pooled_position(&self, p: usize) -> Position {
        let q = (p / 2).min(self.positions / 2 - 1);
        let row = 2 * (q / self.blocks) + p % 2;
        Position {
            rows: [row, row],
            j0: q % self.blocks * self.lanes,
        }
    }

    /// The output planes `out` `[filters, h2·w2]` of one block of `F` packed filters
    /// `[c][kh][kw][F]` (`filters ≤ F` of them real), from `src` (see
    /// [`Correlation::planes_packed`]); no bias means 0, `activation` applied before the store;
    /// with `POOL`, the planes pooled 2×2 (`[filters, (h2 / 2)·(w2 / 2)]`, see
    /// [`Correlation::planes_pooled`]).
    #[inline(always)]
    fn planes_block<
        V: Lanes,
        const PACK: usize,
        const P: usize,
        const KW: usize,
        const F: usize,
        const POOL: bool,
    >(
        &self,
        (src, filters, bias, activation, out): BlockArgs,
    ) {
        // Fixed at compile time when KW is: the tap loop below then unrolls.
        assert!(
            KW == 0 || (KW == self.kw && self.tap == 1),
            "an instance for another row"
        );
        let (kw, tap) = if KW > 0 { (KW, 1) } else { (self.kw, self.tap) };
        let plane_len = self.out_plane::<POOL>();
        let outs = out.len() / plane_len;
        assert!(outs <= F && filters.len() == self.c * self.kh * kw * F);
        assert!(src.len() >= self.source_len(), "source buffer too short");
        assert!(
            !POOL || (PACK == 1 && P.is_multiple_of(2) && self.poolable()),
            "pairs of rows"
        );
        let first =
            std::array::from_fn::<_, F, _>(|f| bias.and_then(|b| b.get(f)).copied().unwrap_or(0.0));
        let src = src.as_ptr();
        for p0 in (0..self.positions).step_by(P) {
            // A group past the last position repeats it: the same values, stored twice.
            let at = std::array::from_fn::<_, P, _>(|u| match POOL {
                true => self.pooled_position(p0 + u),
                false => self.position(p0 + u),
            });
            let offsets = at.map(|at| self.offsets(&at));
            // Plain loops, no closures, wherever a vector is made: a closure the compiler
            // leaves out of line would not be compiled for the level's instructions.
            let mut acc = [[V::zero(); P]; F];
            for (acc, &v) in acc.iter_mut().zip(&first) {
                *acc = [V::splat(v); P];
            }
            for ci in 0..self.c {
                for ki in 0..self.kh {
                    let base = ci * self.plane() + ki * self.row;
                    let mut starts = [[src; 2]; P];
                    for (s, o) in starts.iter_mut().zip(&offsets) {
                        *s = [src.wrapping_add(base + o[0]), src.wrapping_add(base + o[1])];
                    }
                    let first_tap = (ci * self.kh + ki) * kw * F;
                    let (taps, _) = filters[first_tap..first_tap + kw * F].as_chunks::<F>();
                    for (kj, w) in taps.iter().enumerate() {
                        let mut x = [V::zero(); P];
                        for (x, starts) in x.iter_mut().zip(&starts) {
                            // SAFETY: rows (i·stride + ki) < rows and columns up to
                            // kj·tap + j0 + width ≤ row (Correlation::new sizes both; kw
                            // and tap are this correlation's, as asserted above), in
                            // plane ci < c, inside source_len, which src holds.
                            *x = unsafe { Self::load_input::<V, PACK>(starts, kj * tap) };
                        }
                        for (acc, &wv) in acc.iter_mut().zip(w) {
                            let wv = V::splat(wv);
                            for (a, &xv) in acc.iter_mut().zip(&x) {
                                *a = a.mul_add(wv, xv);
                            }
                        }
                    }
                }
            }
            for (f, acc) in acc.iter().enumerate().take(outs) {
                let plane = &mut out[f * plane_len..][..plane_len];
                match POOL {
                    true => self.store_pooled(&at, acc, activation, plane),
                    false => self.store_planes::<V, PACK>(&at, acc, activation, plane),
                }
            }
        }
    }

    /// Stores one filter's output vectors `acc` at positions `at`, activated, into its plane
    /// `[h2·w2]` of [`Correlation::planes`]: each vector's `N / PACK` columns of its row (or
    /// half of them in each of its two rows).
    #[inline(always)]
    fn store_planes<V: Lanes, const PACK: usize>(
        &self,
        at: &[Position],
        acc: &[V],
        activation: Activation,
        plane: &mut [f32],
    ) {
        for (at, &a) in at.iter().zip(acc) {
            let a = activation.apply(a);
            let n = (V::N / PACK).min(self.w2 - at.j0);
            let rows = if at.rows[1] == at.rows[0] { 1 } else { PACK };
            for (half, &row) in at.rows.iter().enumerate().take(rows) {
                let v = if half == 0 { a } else { a.upper() };
                let dst = &mut plane[row * self.w2 + at.j0..][..n];
                // SAFETY: dst holds n ≤ N writable elements of the plane.
                unsafe { v.store(dst.as_mut_ptr(), n) }
            }
        }
    }

    /// Stores one filter's pooled outputs of [`Correlation::planes_pooled`] into its pooled
    /// plane `[(h2 / 2)·(w2 / 2)]`: each pair of output vectors `acc` at positions `at` (rows
    /// `2i`, `2i + 1`), activated, then pooled 2×2 into `N / 2` outputs of row `i`.
    #[inline(always)]
    fn store_pooled<V: Lanes>(
        &self,
        at: &[Position],
        acc: &[V],
        activation: Activation,
        plane: &mut [f32],
    ) {
        let half = self.w2 / 2;
        for (at, acc) in at.chunks_exact(2).zip(acc.chunks_exact(2)) {
            // Activated first, as the layers apart would: the pooling then compares the
            // same values (an activation can map distinct values to one ±0).
            let m = activation
                .apply(acc[0])
                .pool_pairs(activation.apply(acc[1]));
            let n = V::N.min(self.w2 - at[0].j0) / 2;
            let dst = &mut plane[at[0].rows[0] / 2 * half + at[0].j0 / 2..][..n];
            // SAFETY: dst holds n ≤ N writable elements of the plane.
            unsafe { m.store(dst.as_mut_ptr(), n) }
        }
    }

    /// The weight gradient over a batch: `dw[o, c, ki, kj] = Σ_b Σ_{i, j} dy_b[o, i, j] ·
    /// input_b(c, i·stride + ki, j·stride + kj)`, from one source per image (`srcs`, each
    /// [`Correlation::source_len`] long) and the images' dy from [`Correlation::dy_lanes`] (`dys`);
    /// overwrites dw `[outs, c·kh·kw]`, in standard layout.
    pub fn taps(&self, srcs: &[f32], dys: &[f32], dw: &mut [f32]) {
        self.run(Work::Taps { srcs, dys, dw });
    }

    /// [`Correlation::taps`] in lanes `V`, `T` taps of `TF` filters at a time, over groups of
    /// images within `G` f32s (0: the whole batch).
    #[inline(always)]
    fn taps_in<V: Lanes, const T: usize, const TF: usize, const G: usize>(
        &self,
        srcs: &[f32],
        dys: &[f32],
        dw: &mut [f32],
    ) {
        if srcs.is_empty() {
            dw.fill(0.0); // no image: no group below writes dw
            return;
        }
        let mut kj0 = 0;
        while kj0 < self.kw {
            let n = T.min(self.kw - kj0);
            // One instance per block width and packing, called directly (not through a
            // pointer) so that it is inlined into its level's kernel; every accumulator is a
            // register and the loads inside are fixed.
            let args = (srcs, dys, kj0, &mut *dw);
            match (n, self.pack) {
                (n, 1) if n == T => self.tap_block::<V, T, 1, TF, G>(args),
                (n, _) if n == T => self.tap_block::<V, T, 2, TF, G>(args),
                (1, 1) => self.tap_block::<V, 1, 1, TF, G>(args),
                (2, 1) => self.tap_block::<V, 2, 1, TF, G>(args),
                (3, 1) => self.tap_block::<V, 3, 1, TF, G>(args),
                (_, 1) => self.tap_block::<V, 4, 1, TF, G>(args),
                (1, _) => self.tap_block::<V, 1, 2, TF, G>(args),
                (2, _) => self.tap_block::<V, 2, 2, TF, G>(args),
                (3, _) => self.tap_block::<V, 3, 2, TF, G>(args),
                (_, _) => self.tap_block::<V, 4, 2, TF, G>(args),
            }
            kj0 += n;
        }
    }

    /// [`Correlation::taps`] for the `K` taps `kj0 .. kj0 + K` of every filter row, `TF`
    /// filters at a time, over the images in groups of [`Correlation::group`].
    #[inline(always)]
    fn tap_block<V: Lanes, const K: usize, const PACK: usize, const TF: usize, const G: usize>(
        &self,
        (srcs, dys, kj0, dw): (&[f32], &[f32], usize, &mut [f32]),
    ) {
        let ckk = self.c * self.kh * self.kw;
        let outs = dw.len() / ckk;
        let (src_len, dy_len) = (self.source_len(), self.lanes_len(outs));
        let images = srcs.len() / src_len;
        let dy_plane = self.positions * V::N;
        assert!(kj0 + K <= self.kw && FILTERS.is_multiple_of(TF));
        assert!(srcs.len() == images * src_len && dys.len() == images * dy_len);
        let group = self.group(G, TF * dy_plane, images);
        for b0 in (0..images).step_by(group) {
            for o0 in (0..outs).step_by(TF) {
                for ci in 0..self.c {
                    for ki in 0..self.kh {
                        let mut acc = [[V::zero(); K]; TF];
                        for b in b0..images.min(b0 + group) {
                            let src =
                                b * src_len + ci * self.plane() + ki * self.row + kj0 * self.tap;
                            let dy = b * dy_len + o0 * dy_plane;
                            let (src, dy) = (srcs[src..].as_ptr(), dys[dy..].as_ptr());
                            // SAFETY: image b < images of both buffers, whose lengths the
                            // asserts above checked; plane ci < c, row ki < kh, first tap kj0
                            // with kj0 + K ≤ kw; filters o0 .. o0 + TF within outs rounded up
                            // to FILTERS, which TF divides; the unit instance at tap 1.
                            acc = unsafe {
                                if self.tap == 1 {
                                    self.sweep::<V, K, PACK, TF, true>(acc, src, dy)
                                } else {
                                    self.sweep::<V, K, PACK, TF, false>(acc, src, dy)
                                }
                            };
                        }
                        for (f, acc) in acc.iter().enumerate().take(outs - o0) {
                            let at = (o0 + f) * ckk + (ci * self.kh + ki) * self.kw + kj0;
                            for (d, a) in dw[at..].iter_mut().zip(acc) {
                                // The first group overwrites dw; the others add to it.
                                *d = if b0 == 0 { a.sum() } else { *d + a.sum() };
                            }
                        }
                    }
                }
            }
        }
    }

    /// `acc` `[TF][K]` plus one image's `dy · x` over every output position (by value, so that
    /// the accumulators stay registers): `src` is the input at the image's tap (0, `kj0`) of
    /// one channel and filter row, `dy` its first filter's plane of output gradients, the `TF`
    /// planes [`Correlation::lanes_len`] apart. `UNIT`: taps 1 apart (stride 1), so that the
    /// loads of a position sit at fixed offsets from one pointer. Moving the pointers along,
    /// rather than computing each position's offsets, and the unit instance, measured on a
    /// Zen 3 core at AVX2 (`network bench --profile 16`, alternating builds, 3 rounds): the
    /// backward passes of conv1 556–565 → 509–520 µs, conv2 1,645–1,675 → 1,577–1,603, conv3
    /// 579–582 → 546–558.
    ///
    /// # Safety
    /// `src` must start `K` taps of a filter row of a source plane, inside its buffer, and
    /// `dy` `TF` whole dy planes, inside theirs; with `UNIT`, the tap must be 1.
    #[inline(always)]
    unsafe fn sweep<
        V: Lanes,
        const K: usize,
        const PACK: usize,
        const TF: usize,
        const UNIT: bool,
    >(
        &self,
        mut acc: [[V; K]; TF],
        src: *const f32,
        mut dy: *const f32,
    ) -> [[V; K]; TF] {
        let dy_plane = self.positions * V::N;
        let tap = if UNIT { 1 } else { self.tap };
        // Positions in order, the pointers moved along rather than computed from an index:
        // one vector of dy per position, and one of x a block, a line of blocks apart.
        let (lines, blocks) = if PACK == 2 {
            (self.positions, 1)
        } else {
            (self.h2, self.blocks)
        };
        for line in 0..lines {
            let rows = if PACK == 2 {
                [2 * line, (2 * line + 1).min(self.h2 - 1)]
            } else {
                [line, line]
            };
            let [lo, hi] = self.offsets(&Position { rows, j0: 0 });
            let mut starts = [src.wrapping_add(lo), src.wrapping_add(hi)];
            for _ in 0..blocks {
                // A loop, not a closure (see planes_block).
                let mut g = [V::zero(); TF];
                for (f, g) in g.iter_mut().enumerate() {
                    // SAFETY: plane f < TF of the caller's dy planes, at a position below
                    // positions (one vector each, in order).
                    *g = unsafe { V::load(dy.add(f * dy_plane)) };
                }
                for k in 0..K {
                    // SAFETY: as in Correlation::planes, tap kj0 + k < kw of the caller's
                    // source plane, at a block of a line of outputs.
                    let x = unsafe { Self::load_input::<V, PACK>(&starts, k * tap) };
                    for (acc, gv) in acc.iter_mut().zip(&g) {
                        acc[k] = acc[k].mul_add(*gv, x);
                    }
                }
                dy = dy.wrapping_add(V::N);
                starts = [starts[0].wrapping_add(V::N), starts[1].wrapping_add(V::N)];
            }
        }
        acc
    }

    /// The forward kernel's filter blocks for `outs` filters of `ckk` taps at this level: at
    /// most [`WIDEST_AVX2`] filters a block at AVX2, [`FILTERS`] elsewhere (see
    /// [`filter_blocks`]).
    fn filter_blocks(&self, outs: usize, ckk: usize) -> impl Iterator<Item = FilterBlock> {
        filter_blocks(widest(self.isa), outs, ckk)
    }

    /// Elements of `outs` filters of `ckk` taps each, packed by
    /// [`Correlation::pack_filters`].
    pub fn packed_len(&self, outs: usize, ckk: usize) -> usize {
        self.filter_blocks(outs, ckk).map(|b| b.width * ckk).sum()
    }

    /// Filters w `[o, c, kh, kw]` (any layout, e.g. flipped) packed for
    /// [`Correlation::planes`]: per filter block ([`Correlation::filter_blocks`]) of width
    /// `F`, `[c][kh][kw][F]`, zeros past the block's filters. Written in the packed order, each
    /// value read through w's strides (ndarray's `indexed_iter` here took 1.9% of a training
    /// step on a Zen 3 core at AVX2).
    pub fn pack_filters<'a>(&self, w: ArrayView4<f32>, buf: &'a mut [f32]) -> &'a [f32] {
        let (o, c, kh, kw) = w.dim();
        let buf = &mut buf[..self.packed_len(o, c * kh * kw)];
        let [s0, s1, s2, s3] = [0, 1, 2, 3].map(|a| w.stride_of(Axis(a)));
        let base = w.as_ptr();
        let mut dst = buf.iter_mut();
        for block in self.filter_blocks(o, c * kh * kw) {
            let (o0, o1) = (block.o0, block.o0 + block.filters);
            for ci in 0..c {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let at = ci as isize * s1 + ki as isize * s2 + kj as isize * s3;
                        for f in o0..o0 + block.width {
                            let v = if f < o1 {
                                // SAFETY: (f, ci, ki, kj) is inside w's shape (f < o1 ≤ o),
                                // so the offset by its strides stays inside the view's memory.
                                unsafe { *base.offset(f as isize * s0 + at) }
                            } else {
                                0.0
                            };
                            *dst.next().expect("sized by packed_len") = v;
                        }
                    }
                }
            }
        }
        buf
    }

    /// Images per group of the weight gradient: as many as keep one group's `dy_planes` f32s
    /// of dy and one input plane within `budget` f32s (0: no limit), at least 1, `images`
    /// split evenly.
    fn group(&self, budget: usize, dy_planes: usize, images: usize) -> usize {
        if budget == 0 {
            return images.max(1);
        }
        let most = (budget / (dy_planes + self.plane())).max(1);
        // Groups of equal size: 16 images by at most 15 are 2 groups of 8, not 15 and 1.
        images.div_ceil(images.div_ceil(most).max(1)).max(1)
    }
}

/// The kernels in AVX-512 lanes, compiled for AVX-512F: 4 output vectors per filter; 5 taps of
/// 4 filters.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(c: &Correlation, work: Work) {
    c.run_in::<Avx512, 4, 5, 4, 0, { widest(Isa::Avx512) }, { pools(Isa::Avx512) }>(work);
}

/// The kernels in AVX2 lanes, compiled for AVX2 and FMA, blocked for 16 registers: 2 output
/// vectors per filter; 5 taps of 2 filters.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(c: &Correlation, work: Work) {
    c.run_in::<Avx2, 2, 5, 2, GROUP_FLOATS, { widest(Isa::Avx2) }, { pools(Isa::Avx2) }>(work);
}

/// The kernels in portable lanes, for the baseline target (blocking: [`Correlation::run_in`]).
fn run_portable(c: &Correlation, work: Work) {
    c.run_in::<Portable, 2, 2, 4, 0, { widest(Isa::Portable) }, { pools(Isa::Portable) }>(work);
}

/// The most filters a block of the forward kernel holds at level `isa`: [`WIDEST_AVX2`] at
/// AVX2, [`FILTERS`] at the others, as each was measured.
const fn widest(isa: Isa) -> usize {
    match isa {
        Isa::Avx2 => WIDEST_AVX2,
        Isa::Avx512 | Isa::Portable => FILTERS,
    }
}

/// Whether the forward kernel pools in its registers at level `isa` ([`Correlation::poolable`]):
/// at AVX2 and portable, where it was measured and tested; not at AVX-512, where neither was.
const fn pools(isa: Isa) -> bool {
    !matches!(isa, Isa::Avx512)
}

/// The blocks of `outs` filters of `ckk` taps with at most `widest` filters a block: as few
/// blocks as cover them, the filters split as evenly as possible (the first blocks take the
/// remainder), each block packed at least [`FILTERS`] wide. With `widest` 6, 16 filters are
/// 6 + 5 + 5 and 20 are 5 + 5 + 5 + 5; 7 filters are 4 + 3 (packed 4 + 4) at either width.
fn filter_blocks(widest: usize, outs: usize, ckk: usize) -> impl Iterator<Item = FilterBlock> {
    let count = outs.div_ceil(widest);
    let (each, extra) = (outs / count.max(1), outs % count.max(1));
    let (mut o0, mut packed) = (0, 0);
    (0..count).map(move |k| {
        let filters = each + usize::from(k < extra);
        let width = filters.max(FILTERS);
        let block = FilterBlock {
            o0,
            filters,
            width,
            packed,
        };
        (o0, packed) = (o0 + filters, packed + width * ckk);
        block
    })
}

/// The indices `r < n` whose position `r·spread + offset` lies in `0..reach`: a range.
fn landing(n: usize, spread: usize, offset: isize, reach: usize) -> std::ops::Range<usize> {
    let (spread, reach) = (spread as isize, reach as isize);
    // The least r with r·spread + offset ≥ 0, and one past the last with it < reach.
    let first = ((-offset).max(0) + spread - 1) / spread;
    let end = ((reach - offset).max(0) + spread - 1) / spread;
    let end = end.min(n as isize).max(first);
    first as usize..end as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks of every filter count at both widths: consecutive, each [`FILTERS`] to
    /// `widest` wide, as few as `widest` allows, sizes within one of each other, packed one
    /// after another; and the level's widest for each level this CPU runs.
    #[test]
    fn filter_blocks_cover_the_filters() {
        for widest in [FILTERS, WIDEST_AVX2] {
            for outs in 0..40 {
                let blocks: Vec<_> = filter_blocks(widest, outs, 3).collect();
                assert_eq!(blocks.len(), outs.div_ceil(widest), "{widest} {outs}");
                let (mut o0, mut packed) = (0, 0);
                for b in &blocks {
                    assert_eq!((b.o0, b.packed), (o0, packed), "{widest} {outs}");
                    assert_eq!(b.width, b.filters.max(FILTERS), "{widest} {outs}");
                    assert!((FILTERS..=widest).contains(&b.width), "{widest} {outs}");
                    (o0, packed) = (o0 + b.filters, packed + 3 * b.width);
                }
                assert_eq!(o0, outs, "{widest} {outs}");
                let sizes = blocks.iter().map(|b| b.filters);
                let (lo, hi) = (sizes.clone().min(), sizes.max());
                assert!(
                    hi.zip(lo).is_none_or(|(hi, lo)| hi - lo <= 1),
                    "{widest} {outs}"
                );
            }
        }
        let sizes = |widest, outs| {
            filter_blocks(widest, outs, 1)
                .map(|b| b.filters)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(WIDEST_AVX2, 16), [6, 5, 5]);
        assert_eq!(sizes(WIDEST_AVX2, 20), [5, 5, 5, 5]);
        assert_eq!(sizes(FILTERS, 20), [4, 4, 4, 4, 4]);
        for isa in Isa::available() {
            let win = Correlation::new(isa, 1, (1, 1), 1, (1, 1));
            let widest = if isa == Isa::Avx2 {
                WIDEST_AVX2
            } else {
                FILTERS
            };
            assert_eq!(
                win.packed_len(16, 3),
                filter_blocks(widest, 16, 3).map(|b| 3 * b.width).sum()
            );
        }
    }
}
