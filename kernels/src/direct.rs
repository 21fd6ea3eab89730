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

use crate::lanes::Lanes;

/// Output channels computed together: each filter value, broadcast once, feeds
/// [`POSITIONS`] vectors.
const FILTERS: usize = 4;
/// Output vectors computed together for each filter: each input vector loaded feeds
/// [`FILTERS`] accumulators. 4 × 4 accumulators hide the multiply-add latency.
const POSITIONS: usize = 4;
/// Taps of a filter row whose weight gradients are summed together: 4 filters × 5 taps = 20
/// accumulators, plus 4 dy vectors and the input vector, fit in 32 registers.
const TAPS: usize = 5;

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
pub(crate) struct Window {
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
    /// Lanes given to one output row: `blocks·N`, or `N / 2` when packed.
    width: usize,
    /// Input rows the outputs reach: `(h2 − 1)·stride + kh`.
    rows: usize,
    /// Input columns the outputs reach: `(w2 − 1)·stride + kw`.
    cols: usize,
    row: usize,
    tap: usize,
}

/// Where the vector at one position reads and writes: the first output row and column of
/// each half (the same row for both halves when unpacked).
#[derive(Clone, Copy)]
struct Position {
    rows: [usize; 2],
    j0: usize,
}

impl Window {
    pub fn new<V: Lanes>(
        c: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        (h2, w2): (usize, usize),
    ) -> Self {
        let pack = if 2 * w2 <= V::N && h2 > 1 { 2 } else { 1 };
        let blocks = if pack == 2 { 1 } else { w2.div_ceil(V::N) };
        let width = if pack == 2 { V::N / 2 } else { blocks * V::N };
        let (row, tap) = if stride == 1 {
            (width + kw - 1, 1)
        } else {
            (kw * width, width)
        };
        Self {
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

    /// Elements of one image's output gradient laid out as [`Window::taps`] reads it: one
    /// vector per position, `outs` rounded up to whole filter blocks.
    fn lanes_len<V: Lanes>(&self, outs: usize) -> usize {
        outs.next_multiple_of(FILTERS) * self.positions * V::N
    }

    /// The output rows and first column of position `p` (clamped to the last).
    fn position<V: Lanes>(&self, p: usize) -> Position {
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
                j0: p % self.blocks * V::N,
            }
        }
    }

    /// Offsets in a source plane of the input that position `at` reads at tap (0, 0), for
    /// each half.
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

    /// The output gradients dy `[b, outs, h2, w2]` as [`Window::taps`] reads them: each
    /// output row at a multiple of [`Window::width`] lanes, zeros in the lanes past it, zero
    /// planes up to a whole filter block. That is dy itself when its rows already fill their
    /// lanes and its planes whole blocks (the seed's three convolutions); otherwise a copy in
    /// `buf`, of [`Window::dy_copy_len`] elements.
    pub fn dy_lanes<'a, V: Lanes>(&self, dy: ArrayView4<'a, f32>, buf: &'a mut [f32]) -> &'a [f32] {
        let outs = dy.len_of(Axis(1));
        if self.dy_copy_len::<V>(&dy) == 0 {
            return dy.to_slice().expect("checked standard layout");
        }
        let plane_len = self.positions * V::N;
        let buf = &mut buf[..dy.len_of(Axis(0)) * self.lanes_len::<V>(outs)];
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

    /// Elements of the copy [`Window::dy_lanes`] makes of dy: 0 when it reads dy itself.
    pub fn dy_copy_len<V: Lanes>(&self, dy: &ArrayView4<f32>) -> usize {
        let (b, outs) = (dy.len_of(Axis(0)), dy.len_of(Axis(1)));
        let whole = self.w2 == self.width
            && self.h2 * self.width == self.positions * V::N
            && outs.is_multiple_of(FILTERS)
            && dy.is_standard_layout();
        if whole {
            0
        } else {
            b * self.lanes_len::<V>(outs)
        }
    }

    /// The forward pass over one source: `out[o, i, j] = bias[o] + Σ filters[o, c, ki, kj] ·
    /// input(c, i·stride + ki, j·stride + kj)`, out `[outs, h2·w2]` (overwritten), filters
    /// packed by [`pack_filters`]; no bias means 0.
    pub fn planes<V: Lanes>(
        &self,
        src: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        out: ArrayViewMut2<f32>,
    ) {
        // One instance per packing, so that the loads inside are fixed.
        if self.pack == 2 {
            self.planes_packed::<V, 2>(src, packed, bias, out);
        } else {
            self.planes_packed::<V, 1>(src, packed, bias, out);
        }
    }

    fn planes_packed<V: Lanes, const PACK: usize>(
        &self,
        src: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        mut out: ArrayViewMut2<f32>,
    ) {
        let outs = out.nrows();
        let out = out
            .as_slice_mut()
            .expect("outputs are staged in standard layout");
        let block = self.c * self.kh * self.kw * FILTERS;
        assert!(src.len() >= self.source_len(), "source buffer too short");
        assert!(packed.len() >= outs.div_ceil(FILTERS) * block);
        assert_eq!(out.len(), outs * self.h2 * self.w2);
        let src = src.as_ptr();
        for (ob, filters) in packed
            .chunks_exact(block)
            .take(outs.div_ceil(FILTERS))
            .enumerate()
        {
            let o0 = ob * FILTERS;
            let first = std::array::from_fn::<_, FILTERS, _>(|f| {
                bias.and_then(|b| b.get(o0 + f)).copied().unwrap_or(0.0)
            });
            for p0 in (0..self.positions).step_by(POSITIONS) {
                // A group past the last position repeats it: the same values, stored twice.
                let at = std::array::from_fn::<_, POSITIONS, _>(|u| self.position::<V>(p0 + u));
                let offsets = at.map(|at| self.offsets(&at));
                let mut acc = first.map(|v| [V::splat(v); POSITIONS]);
                for ci in 0..self.c {
                    for ki in 0..self.kh {
                        let base = ci * self.plane() + ki * self.row;
                        let starts = offsets.map(|o| o.map(|o| src.wrapping_add(base + o)));
                        let first_tap = (ci * self.kh + ki) * self.kw * FILTERS;
                        let (taps, _) = filters[first_tap..first_tap + self.kw * FILTERS]
                            .as_chunks::<FILTERS>();
                        for (kj, w) in taps.iter().enumerate() {
                            let x = starts.map(|starts| {
                                // SAFETY: rows (i·stride + ki) < rows and columns up to
                                // kj·tap + j0 + width ≤ row (Window::new sizes both), in
                                // plane ci < c, inside source_len, which src holds.
                                unsafe { Self::load_input::<V, PACK>(&starts, kj * self.tap) }
                            });
                            for (acc, &wv) in acc.iter_mut().zip(w) {
                                let wv = V::splat(wv);
                                for (a, &xv) in acc.iter_mut().zip(&x) {
                                    *a = a.mul_add(wv, xv);
                                }
                            }
                        }
                    }
                }
                for (f, acc) in acc.iter().enumerate().take(outs - o0.min(outs)) {
                    let plane = &mut out[(o0 + f) * self.h2 * self.w2..][..self.h2 * self.w2];
                    for (at, &a) in at.iter().zip(acc) {
                        let n = (V::N / PACK).min(self.w2 - at.j0);
                        let mut store = |row: usize, v: V| {
                            let dst = &mut plane[row * self.w2 + at.j0..][..n];
                            // SAFETY: dst holds n ≤ N writable elements of out.
                            unsafe { v.store(dst.as_mut_ptr(), n) }
                        };
                        store(at.rows[0], a);
                        if PACK == 2 && at.rows[1] != at.rows[0] {
                            store(at.rows[1], a.upper());
                        }
                    }
                }
            }
        }
    }

    /// The weight gradient over a batch: `dw[o, c, ki, kj] = Σ_b Σ_{i, j} dy_b[o, i, j] ·
    /// input_b(c, i·stride + ki, j·stride + kj)`, from one source per image (`srcs`, each
    /// [`Window::source_len`] long) and the images' dy from [`Window::dy_lanes`] (`dys`);
    /// overwrites dw `[outs, c·kh·kw]`, in standard layout.
    pub fn taps<V: Lanes>(&self, srcs: &[f32], dys: &[f32], dw: &mut [f32]) {
        let ckk = self.c * self.kh * self.kw;
        let outs = dw.len() / ckk;
        let (src_len, dy_len) = (self.source_len(), self.lanes_len::<V>(outs));
        let images = srcs.len() / src_len;
        assert_eq!(dys.len(), images * dy_len, "one dy per source");
        let mut kj0 = 0;
        while kj0 < self.kw {
            let n = TAPS.min(self.kw - kj0);
            // One instance per block width and packing, so that every accumulator is a
            // register and the loads inside are fixed.
            let block = match (n, self.pack) {
                (1, 1) => Self::tap_block::<V, 1, 1>,
                (2, 1) => Self::tap_block::<V, 2, 1>,
                (3, 1) => Self::tap_block::<V, 3, 1>,
                (4, 1) => Self::tap_block::<V, 4, 1>,
                (_, 1) => Self::tap_block::<V, TAPS, 1>,
                (1, _) => Self::tap_block::<V, 1, 2>,
                (2, _) => Self::tap_block::<V, 2, 2>,
                (3, _) => Self::tap_block::<V, 3, 2>,
                (4, _) => Self::tap_block::<V, 4, 2>,
                (_, _) => Self::tap_block::<V, TAPS, 2>,
            };
            block(self, srcs, dys, kj0, dw);
            kj0 += n;
        }
    }

    /// [`Window::taps`] for the `K` taps `kj0 .. kj0 + K` of every filter row.
    fn tap_block<V: Lanes, const K: usize, const PACK: usize>(
        &self,
        srcs: &[f32],
        dys: &[f32],
        kj0: usize,
        dw: &mut [f32],
    ) {
        let ckk = self.c * self.kh * self.kw;
        let outs = dw.len() / ckk;
        let (src_len, dy_len) = (self.source_len(), self.lanes_len::<V>(outs));
        let images = srcs.len() / src_len;
        let dy_plane = self.positions * V::N;
        assert!(kj0 + K <= self.kw);
        assert!(srcs.len() == images * src_len && dys.len() == images * dy_len);
        let (srcs, dys) = (srcs.as_ptr(), dys.as_ptr());
        for o0 in (0..outs).step_by(FILTERS) {
            for ci in 0..self.c {
                for ki in 0..self.kh {
                    let mut acc = [[V::zero(); K]; FILTERS];
                    for b in 0..images {
                        let base = b * src_len + ci * self.plane() + ki * self.row + kj0 * self.tap;
                        let dy0 = b * dy_len + o0 * dy_plane;
                        // Positions in order, counted without a division per position.
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
                            for block in 0..blocks {
                                let p = line * blocks + block;
                                let starts = self
                                    .offsets(&Position {
                                        rows,
                                        j0: block * V::N,
                                    })
                                    .map(|o| srcs.wrapping_add(base + o));
                                let g = std::array::from_fn::<_, FILTERS, _>(|f| {
                                    // SAFETY: plane o0 + f < outs rounded up to FILTERS,
                                    // position p < positions: inside image b's dy_len,
                                    // b < images, as checked above.
                                    unsafe { V::load(dys.add(dy0 + f * dy_plane + p * V::N)) }
                                });
                                for k in 0..K {
                                    // SAFETY: as in Window::planes, tap kj0 + k < kw: inside
                                    // image b's source.
                                    let x = unsafe {
                                        Self::load_input::<V, PACK>(&starts, k * self.tap)
                                    };
                                    for (acc, gv) in acc.iter_mut().zip(&g) {
                                        acc[k] = acc[k].mul_add(*gv, x);
                                    }
                                }
                            }
                        }
                    }
                    for (f, acc) in acc.iter().enumerate().take(outs - o0) {
                        let taps = &mut dw[(o0 + f) * ckk + (ci * self.kh + ki) * self.kw + kj0..];
                        for (d, a) in taps.iter_mut().zip(acc) {
                            *d = a.sum();
                        }
                    }
                }
            }
        }
    }
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

/// Filters w `[o, c, kh, kw]` (any layout, e.g. flipped) packed for [`Window::planes`]: blocks
/// of [`FILTERS`] filters, `[o / FILTERS][c][kh][kw][FILTERS]`, zeros past the last filter.
pub(crate) fn pack_filters<'a>(w: ArrayView4<f32>, buf: &'a mut [f32]) -> &'a [f32] {
    let (o, c, kh, kw) = w.dim();
    let len = packed_len(o, c * kh * kw);
    let buf = &mut buf[..len];
    buf.fill(0.0);
    for ((f, ci, ki, kj), &v) in w.indexed_iter() {
        buf[((((f / FILTERS) * c + ci) * kh + ki) * kw + kj) * FILTERS + f % FILTERS] = v;
    }
    buf
}

/// Elements of `o` filters of `ckk` taps each, packed.
pub(crate) fn packed_len(o: usize, ckk: usize) -> usize {
    o.next_multiple_of(FILTERS) * ckk
}
