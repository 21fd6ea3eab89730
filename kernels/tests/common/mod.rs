//! Helpers shared by the kernel tests: seeded random tensors, NaN-filled outputs, every
//! technique at every instruction-set level, and the one generic check that runs each against
//! the naive reference.
#![allow(dead_code)]

use kernels::{Isa, Scratch, Technique, with_isa};
use ndarray::{ArrayD, Ix1, Ix2, Ix4, IxDyn};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Relative tolerance of the technique comparisons: the techniques sum the same products in
/// other orders, and f32 rounding of a few-hundred-term sum stays well below this.
pub const RTOL: f32 = 1e-4;
/// Absolute tolerance, as a fraction of the largest reference magnitude (at least 1), for
/// elements that cancel to near zero. A wrong index moves an element by O(1) of that scale.
pub const ATOL: f32 = 1e-5;

/// A tensor of the given shape, uniform in [−1, 1), the same for the same seed.
pub fn random(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-1.0..1.0))
}

/// Labels below `classes`, the same for the same seed.
pub fn labels(n: usize, classes: usize, seed: u64) -> ndarray::Array1<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    ndarray::Array1::from_shape_simple_fn(n, || rng.random_range(0..classes))
}

/// An output buffer filled with NaN, so that an element a kernel never writes fails the test.
pub fn nan(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_elem(IxDyn(shape), f32::NAN)
}

/// Checks `got` against `want` elementwise: `|got − want| ≤ RTOL·|want| + ATOL·scale`, where
/// scale is the largest `|want|` (at least 1). NaN anywhere fails.
pub fn assert_close(what: &str, got: &ArrayD<f32>, want: &ArrayD<f32>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for ((index, &g), &w) in got.indexed_iter().zip(want.iter()) {
        let tol = RTOL * w.abs() + ATOL * scale;
        assert!(
            w.is_finite() && (g - w).abs() <= tol,
            "{what}: at {:?} got {g}, reference {w} (tolerance {tol})",
            index
        );
    }
}

/// Outputs of one run of a layer pass: named tensors (integer outputs converted to f32).
pub type Outputs = Vec<(&'static str, ArrayD<f32>)>;

/// A technique at an instruction-set level, forced on the test's own thread (so tests running
/// in parallel threads do not race).
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub t: Technique,
    pub isa: Isa,
}

impl Variant {
    /// `f` with this variant's level forced on the calling thread.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        with_isa(self.isa, f).expect("variants() lists supported levels only")
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.t, self.isa)
    }
}

/// Every technique, the direct one at every level this CPU supports (the others do not
/// depend on the level and run once, at the best).
pub fn variants() -> Vec<Variant> {
    Technique::ALL
        .into_iter()
        .flat_map(|t| {
            let levels: Vec<Isa> = if t == Technique::Direct {
                Isa::available().collect()
            } else {
                vec![Isa::detect()]
            };
            levels.into_iter().map(move |isa| Variant { t, isa })
        })
        .collect()
}

/// The one equivalence check: runs `run` with every variant and compares each output with
/// the naive technique's. `run` must allocate its outputs with [`nan`]. Each variant runs
/// twice: once to size its scratch, then with a scratch of that size poisoned with NaN, so a
/// kernel that reads scratch it has not written fails too.
pub fn assert_techniques_agree(case: &str, run: impl Fn(Technique, &mut Scratch) -> Outputs) {
    let run_poisoned = |v: Variant| {
        v.run(|| {
            let mut sizing = Scratch::new();
            run(v.t, &mut sizing);
            run(v.t, &mut Scratch::poisoned(sizing.len()))
        })
    };
    let reference = run_poisoned(Variant {
        t: Technique::Naive,
        isa: Isa::Portable,
    });
    for v in variants() {
        let outputs = run_poisoned(v);
        for ((name, got), (_, want)) in outputs.iter().zip(&reference) {
            assert_close(&format!("{case}, {name}, {v}"), got, want);
        }
    }
}

/// Views of test tensors at the ranks the kernels take.
pub fn v1(a: &ArrayD<f32>) -> ndarray::ArrayView1<'_, f32> {
    a.view().into_dimensionality::<Ix1>().unwrap()
}
pub fn v2(a: &ArrayD<f32>) -> ndarray::ArrayView2<'_, f32> {
    a.view().into_dimensionality::<Ix2>().unwrap()
}
pub fn v4(a: &ArrayD<f32>) -> ndarray::ArrayView4<'_, f32> {
    a.view().into_dimensionality::<Ix4>().unwrap()
}
pub fn m1(a: &mut ArrayD<f32>) -> ndarray::ArrayViewMut1<'_, f32> {
    a.view_mut().into_dimensionality::<Ix1>().unwrap()
}
pub fn m2(a: &mut ArrayD<f32>) -> ndarray::ArrayViewMut2<'_, f32> {
    a.view_mut().into_dimensionality::<Ix2>().unwrap()
}
pub fn m4(a: &mut ArrayD<f32>) -> ndarray::ArrayViewMut4<'_, f32> {
    a.view_mut().into_dimensionality::<Ix4>().unwrap()
}
