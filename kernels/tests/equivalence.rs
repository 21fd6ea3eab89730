//! Every technique of every layer and pass equals the naive reference, over a table of named
//! shapes (the seed network's layers first) and over randomized shapes.

mod common;

use common::{
    Outputs, Variant, assert_techniques_agree, labels, m1, m2, m4, nan, random, v1, v2, v4,
    variants,
};
use kernels::*;
use ndarray::{Array4, ArrayD, Ix2, Ix4};
use proptest::prelude::*;

/// A convolution case: x `[b, c, h, w]`, `d` filters of `k × k`, stride, padding.
#[derive(Clone, Copy, Debug)]
struct Conv {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    d: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

const fn conv(
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    d: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Conv {
    Conv {
        b,
        c,
        h,
        w,
        d,
        k,
        stride,
        pad,
    }
}

const CONV_CASES: &[(&str, Conv)] = &[
    ("seed conv1 b1", conv(1, 3, 32, 32, 16, 5, 1, 2)),
    ("seed conv1 b5", conv(5, 3, 32, 32, 16, 5, 1, 2)),
    ("seed conv2 b1", conv(1, 16, 16, 16, 20, 5, 1, 2)),
    ("seed conv2 b5", conv(5, 16, 16, 16, 20, 5, 1, 2)),
    ("seed conv3 b1", conv(1, 20, 8, 8, 20, 5, 1, 2)),
    ("seed conv3 b5", conv(5, 20, 8, 8, 20, 5, 1, 2)),
    ("f1 pointwise", conv(2, 4, 6, 5, 3, 1, 1, 0)),
    ("f1 stride 2", conv(2, 3, 7, 8, 2, 1, 2, 0)),
    ("stride 2 pad 1", conv(2, 3, 9, 9, 4, 3, 2, 1)),
    ("stride 3 not tiling", conv(2, 2, 10, 11, 3, 3, 3, 0)),
    ("stride 3 pad 2", conv(1, 2, 13, 7, 2, 4, 3, 2)),
    ("pad 3 around 3x3", conv(2, 2, 5, 6, 3, 3, 1, 3)),
    ("pad 3 stride 2", conv(1, 3, 6, 5, 2, 5, 2, 3)),
    ("non-square 7x11", conv(3, 2, 7, 11, 5, 3, 1, 1)),
    ("tall 12x3", conv(2, 1, 12, 3, 2, 3, 2, 0)),
    ("window = input", conv(2, 3, 5, 5, 4, 5, 1, 0)),
    ("1x1 input padded", conv(1, 2, 1, 1, 2, 3, 1, 1)),
    ("padding = window, stride 1", conv(2, 3, 4, 4, 2, 2, 1, 2)),
    (
        "7x7 window, 5 filters, 18 wide",
        conv(2, 2, 9, 18, 5, 7, 1, 3),
    ),
    ("7x7 window, stride 2", conv(1, 3, 11, 21, 6, 7, 2, 2)),
    // Filter blocks split unevenly at AVX2 (the seed's 16 filters are 6 + 5 + 5): 13 filters
    // are 5 + 4 + 4, the input gradient's 7 channels 4 + 3 (the second padded).
    ("13 filters, 7 channels", conv(2, 7, 6, 9, 13, 3, 1, 1)),
    // Pooled in registers at 8 lanes with a partial vector: 3 of 4 pooled columns, a
    // second block of 1, a second block of 2.
    ("pooled 6 wide", conv(2, 3, 8, 6, 5, 3, 1, 1)),
    ("pooled 10 wide, 2 blocks", conv(1, 2, 4, 10, 7, 3, 1, 1)),
    ("pooled 12 wide, 2 blocks", conv(2, 4, 6, 12, 9, 3, 1, 1)),
];

fn run_conv_forward(case: Conv, t: Technique, scratch: &mut Scratch) -> Outputs {
    let p = Conv2dParams {
        stride: case.stride,
        padding: case.pad,
    };
    let x = random(&[case.b, case.c, case.h, case.w], 1);
    let w = random(&[case.d, case.c, case.k, case.k], 2);
    let bias = random(&[case.d], 3);
    let y_shape = p.output_shape(x.shape(), w.shape()).unwrap();
    let mut y = nan(&y_shape);
    conv2d_forward(t, &p, v4(&x), v4(&w), v1(&bias), m4(&mut y), scratch).unwrap();
    // The convolution with its activation, fused into the direct kernels' store.
    let mut z = nan(&y_shape);
    conv2d_leaky_relu_forward(t, &p, v4(&x), v4(&w), v1(&bias), m4(&mut z), scratch).unwrap();
    let mut outputs = vec![("y", y), ("leaky_relu(y)", z.clone())];
    // And pooled (inference): the direct technique's fused kernel against the other
    // techniques' layers apart. 2×2 at stride 2 pools in the kernel's registers where the
    // planes' sides are even; 3×3 windows pool apart.
    let windows = [
        ("pool 2x2 (leaky_relu(y))", 2, 2),
        ("pool 3x3 s2 (leaky_relu(y))", 3, 2),
    ];
    for (name, size, stride) in windows {
        let pool = Pool2dParams { size, stride };
        let Ok(shape) = pool.output_shape(&y_shape) else {
            continue; // planes smaller than the window
        };
        let mut pooled = nan(&shape);
        if t == Technique::Direct {
            let (xv, wv, bv) = (v4(&x), v4(&w), v1(&bias));
            conv2d_leaky_relu_pool_forward(&p, &pool, xv, wv, bv, m4(&mut pooled), scratch)
                .unwrap();
        } else {
            let mut argmax = Array4::from_elem(to4(&shape), u32::MAX);
            max_pool2d_forward(
                t,
                &pool,
                v4(&z),
                m4(&mut pooled),
                argmax.view_mut(),
                scratch,
            )
            .unwrap();
        }
        outputs.push((name, pooled));
    }
    outputs
}

fn run_conv_backward(case: Conv, t: Technique, scratch: &mut Scratch) -> Outputs {
    let p = Conv2dParams {
        stride: case.stride,
        padding: case.pad,
    };
    let x = random(&[case.b, case.c, case.h, case.w], 4);
    let w = random(&[case.d, case.c, case.k, case.k], 5);
    let dy = random(&p.output_shape(x.shape(), w.shape()).unwrap(), 6);
    let (mut dx, mut dw, mut dbias) = (nan(x.shape()), nan(w.shape()), nan(&[case.d]));
    conv2d_backward(
        t,
        &p,
        v4(&x),
        v4(&w),
        v4(&dy),
        Some(m4(&mut dx)),
        m4(&mut dw),
        m1(&mut dbias),
        scratch,
    )
    .unwrap();
    // Without the input gradient (a first layer), the parameter gradients are the same.
    let (mut dw_alone, mut dbias_alone) = (nan(w.shape()), nan(&[case.d]));
    conv2d_backward(
        t,
        &p,
        v4(&x),
        v4(&w),
        v4(&dy),
        None,
        m4(&mut dw_alone),
        m1(&mut dbias_alone),
        scratch,
    )
    .unwrap();
    vec![
        ("dx", dx),
        ("dw", dw),
        ("dbias", dbias),
        ("dw without dx", dw_alone),
        ("dbias without dx", dbias_alone),
    ]
}

/// A pooling case: x `[b, c, h, w]`, window `f × f`, stride.
#[derive(Clone, Copy, Debug)]
struct Pool {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    f: usize,
    stride: usize,
}

const fn pool(b: usize, c: usize, h: usize, w: usize, f: usize, stride: usize) -> Pool {
    Pool {
        b,
        c,
        h,
        w,
        f,
        stride,
    }
}

const POOL_CASES: &[(&str, Pool)] = &[
    ("seed pool1 b1", pool(1, 16, 32, 32, 2, 2)),
    ("seed pool1 b5", pool(5, 16, 32, 32, 2, 2)),
    ("seed pool2 b5", pool(5, 20, 16, 16, 2, 2)),
    ("seed pool3 b5", pool(5, 20, 8, 8, 2, 2)),
    ("odd 7x9 floors", pool(2, 3, 7, 9, 2, 2)),
    ("odd 11x21: vectors, then a tail", pool(2, 3, 11, 21, 2, 2)),
    ("overlapping f3 s2", pool(2, 3, 9, 8, 3, 2)),
    ("overlapping f3 s1", pool(2, 2, 6, 7, 3, 1)),
    ("stride 3 f2 gaps", pool(1, 2, 8, 11, 2, 3)),
    ("f1 s1 identity", pool(2, 2, 4, 3, 1, 1)),
    ("window = input", pool(3, 2, 5, 5, 5, 1)),
    ("f3 s3 tiles, odd edges", pool(2, 3, 10, 11, 3, 3)),
];

/// Inputs quantised to a few levels, so windows hold many ties: equivalence then also checks
/// that every technique applies the same tie rule.
fn tied(shape: &[usize], seed: u64) -> ArrayD<f32> {
    random(shape, seed).mapv(|v| (v * 2.0).round())
}

fn pool_input(case: Pool, seed: u64, ties: bool) -> ArrayD<f32> {
    let shape = [case.b, case.c, case.h, case.w];
    if ties {
        tied(&shape, seed)
    } else {
        random(&shape, seed)
    }
}

fn run_pool_forward(case: Pool, ties: bool, t: Technique, scratch: &mut Scratch) -> Outputs {
    let p = Pool2dParams {
        size: case.f,
        stride: case.stride,
    };
    let x = pool_input(case, 7, ties);
    let shape = p.output_shape(x.shape()).unwrap();
    let mut y = nan(&shape);
    let mut argmax = Array4::from_elem(to4(&shape), u32::MAX);
    max_pool2d_forward(t, &p, v4(&x), m4(&mut y), argmax.view_mut(), scratch).unwrap();
    vec![("y", y), ("argmax", argmax.mapv(|a| a as f32).into_dyn())]
}

fn run_pool_backward(case: Pool, ties: bool, t: Technique, scratch: &mut Scratch) -> Outputs {
    let p = Pool2dParams {
        size: case.f,
        stride: case.stride,
    };
    let x = pool_input(case, 8, ties);
    let shape = p.output_shape(x.shape()).unwrap();
    let (mut y, mut argmax) = (nan(&shape), Array4::zeros(to4(&shape)));
    // The argmax comes from the naive forward, so backward techniques get identical routes.
    max_pool2d_forward_naive(
        &p,
        v4(&x),
        m4(&mut y),
        argmax.view_mut(),
        &mut Scratch::new(),
    )
    .unwrap();
    let dy = random(&shape, 9);
    let mut dx = nan(x.shape());
    max_pool2d_backward(t, &p, v4(&dy), argmax.view(), m4(&mut dx), scratch).unwrap();
    vec![("dx", dx)]
}

/// A fully connected case: x `[b, i]` → `[b, o]`.
const FC_CASES: &[(&str, [usize; 3])] = &[
    ("seed fc b1", [1, 320, 10]),
    ("seed fc b5", [5, 320, 10]),
    ("1 to 1", [1, 1, 1]),
    ("odd 3x7 to 5", [3, 7, 5]),
    ("wide 2x1000 to 3", [2, 1000, 3]),
    ("batch 64", [64, 50, 10]),
];

fn run_fc_forward([b, i, o]: [usize; 3], t: Technique, scratch: &mut Scratch) -> Outputs {
    let (x, w, bias) = (random(&[b, i], 10), random(&[o, i], 11), random(&[o], 12));
    let mut y = nan(&[b, o]);
    fc_forward(t, v2(&x), v2(&w), v1(&bias), m2(&mut y), scratch).unwrap();
    vec![("y", y)]
}

fn run_fc_backward([b, i, o]: [usize; 3], t: Technique, scratch: &mut Scratch) -> Outputs {
    let (x, w, dy) = (
        random(&[b, i], 13),
        random(&[o, i], 14),
        random(&[b, o], 15),
    );
    let (mut dx, mut dw, mut dbias) = (nan(&[b, i]), nan(&[o, i]), nan(&[o]));
    fc_backward(
        t,
        v2(&x),
        v2(&w),
        v2(&dy),
        m2(&mut dx),
        m2(&mut dw),
        m1(&mut dbias),
        scratch,
    )
    .unwrap();
    vec![("dx", dx), ("dw", dw), ("dbias", dbias)]
}

const ACTIVATION_CASES: &[(&str, &[usize])] = &[
    ("seed conv1 output b5", &[5, 16, 32, 32]),
    ("seed fc output", &[5, 10]),
    ("odd 3x5x7", &[3, 5, 7]),
    ("single", &[1]),
];

type Activation = (
    &'static str,
    fn(Technique, ndarray::ArrayViewD<f32>, ndarray::ArrayViewMutD<f32>) -> Result<()>,
    fn(
        Technique,
        ndarray::ArrayViewD<f32>,
        ndarray::ArrayViewD<f32>,
        ndarray::ArrayViewMutD<f32>,
    ) -> Result<()>,
);

const ACTIVATIONS: [Activation; 2] = [
    ("leaky_relu", leaky_relu_forward, leaky_relu_backward),
    ("sigmoid", sigmoid_forward, sigmoid_backward),
];

fn run_activation(act: Activation, shape: &[usize], t: Technique) -> Outputs {
    let x = random(shape, 16).mapv(|v| 4.0 * v);
    let dy = random(shape, 17);
    let (mut y, mut dx) = (nan(shape), nan(shape));
    (act.1)(t, x.view(), y.view_mut()).unwrap();
    (act.2)(t, y.view(), dy.view(), dx.view_mut()).unwrap();
    vec![("y", y), ("dx", dx)]
}

/// A softmax case: `[b, k]`, logits scaled by `spread` (large spreads test stability).
const SOFTMAX_CASES: &[(&str, [usize; 2], f32)] = &[
    ("seed output b1", [1, 10], 3.0),
    ("seed output b5", [5, 10], 3.0),
    ("batch 128", [128, 10], 3.0),
    ("one class", [4, 1], 3.0),
    ("odd 7x3", [7, 3], 3.0),
    ("logits of ±500", [5, 10], 500.0),
];

fn run_softmax([b, k]: [usize; 2], spread: f32, t: Technique, scratch: &mut Scratch) -> Outputs {
    let logits = random(&[b, k], 18).mapv(|v| spread * v);
    let labels = labels(b, k, 19);
    let mut probs = nan(&[b, k]);
    let loss =
        softmax_cross_entropy_forward(t, v2(&logits), labels.view(), m2(&mut probs), scratch)
            .unwrap();
    let mut dlogits = nan(&[b, k]);
    softmax_cross_entropy_backward(t, v2(&probs), labels.view(), m2(&mut dlogits)).unwrap();
    vec![
        ("probs", probs),
        ("loss", ArrayD::from_elem(ndarray::IxDyn(&[1]), loss)),
        ("dlogits", dlogits),
    ]
}

#[test]
fn conv_forward_named_shapes() {
    for &(name, case) in CONV_CASES {
        assert_techniques_agree(&format!("conv forward {name}"), |t, s| {
            run_conv_forward(case, t, s)
        });
    }
}

#[test]
fn conv_backward_named_shapes() {
    for &(name, case) in CONV_CASES {
        assert_techniques_agree(&format!("conv backward {name}"), |t, s| {
            run_conv_backward(case, t, s)
        });
    }
}

#[test]
fn pool_forward_named_shapes() {
    for &(name, case) in POOL_CASES {
        for ties in [false, true] {
            assert_techniques_agree(&format!("pool forward {name}, ties {ties}"), |t, s| {
                run_pool_forward(case, ties, t, s)
            });
        }
    }
}

#[test]
fn pool_backward_named_shapes() {
    for &(name, case) in POOL_CASES {
        for ties in [false, true] {
            assert_techniques_agree(&format!("pool backward {name}, ties {ties}"), |t, s| {
                run_pool_backward(case, ties, t, s)
            });
        }
    }
}

#[test]
fn fc_forward_named_shapes() {
    for &(name, dims) in FC_CASES {
        assert_techniques_agree(&format!("fc forward {name}"), |t, s| {
            run_fc_forward(dims, t, s)
        });
    }
}

#[test]
fn fc_backward_named_shapes() {
    for &(name, dims) in FC_CASES {
        assert_techniques_agree(&format!("fc backward {name}"), |t, s| {
            run_fc_backward(dims, t, s)
        });
    }
}

#[test]
fn activations_named_shapes() {
    for act in ACTIVATIONS {
        for &(name, shape) in ACTIVATION_CASES {
            assert_techniques_agree(&format!("{} {name}", act.0), |t, _| {
                run_activation(act, shape, t)
            });
        }
    }
}

#[test]
fn softmax_named_shapes() {
    for &(name, dims, spread) in SOFTMAX_CASES {
        assert_techniques_agree(&format!("softmax {name}"), |t, s| {
            run_softmax(dims, spread, t, s)
        });
    }
}

fn to4(s: &[usize]) -> [usize; 4] {
    s.try_into().unwrap()
}

/// Random convolutions: up to 13 filters and 8 channels, so that the forward pass and the input
/// gradient split their filters into several blocks at AVX2 (at most 6 a block).
fn conv_strategy() -> impl Strategy<Value = Conv> {
    (
        1usize..=3,
        1usize..=8,
        1usize..=12,
        1usize..=20,
        1usize..=13,
        1usize..=7,
        1usize..=3,
        0usize..=3,
    )
        .prop_map(|(b, c, h, w, d, k, stride, pad)| Conv {
            b,
            c,
            h,
            w,
            d,
            k,
            stride,
            pad,
        })
        .prop_filter("window fits the padded input", |c| {
            c.k <= c.h + 2 * c.pad && c.k <= c.w + 2 * c.pad
        })
}

fn pool_strategy() -> impl Strategy<Value = Pool> {
    (
        1usize..=3,
        1usize..=4,
        1usize..=12,
        1usize..=12,
        1usize..=4,
        1usize..=3,
    )
        .prop_map(|(b, c, h, w, f, stride)| Pool {
            b,
            c,
            h,
            w,
            f,
            stride,
        })
        .prop_filter("window fits the input", |p| p.f <= p.h && p.f <= p.w)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn conv_random_shapes(case in conv_strategy()) {
        assert_techniques_agree(&format!("conv forward {case:?}"), |t, s| run_conv_forward(case, t, s));
        assert_techniques_agree(&format!("conv backward {case:?}"), |t, s| run_conv_backward(case, t, s));
    }

    #[test]
    fn pool_random_shapes(case in pool_strategy(), ties in any::<bool>()) {
        assert_techniques_agree(&format!("pool forward {case:?}"), |t, s| run_pool_forward(case, ties, t, s));
        assert_techniques_agree(&format!("pool backward {case:?}"), |t, s| run_pool_backward(case, ties, t, s));
    }

    #[test]
    fn fc_random_shapes(b in 1usize..=9, i in 1usize..=40, o in 1usize..=12) {
        assert_techniques_agree("fc forward", |t, s| run_fc_forward([b, i, o], t, s));
        assert_techniques_agree("fc backward", |t, s| run_fc_backward([b, i, o], t, s));
    }

    #[test]
    fn elementwise_random_shapes(shape in proptest::collection::vec(1usize..=6, 1..=4), b in 1usize..=9, k in 1usize..=12) {
        for act in ACTIVATIONS {
            assert_techniques_agree(act.0, |t, _| run_activation(act, &shape, t));
        }
        assert_techniques_agree("softmax", |t, s| run_softmax([b, k], 3.0, t, s));
    }
}

/// Runs `check(pool, pooled shape, variant)` for a 2×2 and a 3×3 max pooling (stride 2) of
/// convolution outputs `y_shape`, at the direct technique on every level this CPU runs (the
/// fused pooled pass has no other technique): in registers and apart.
fn for_each_pooling(y_shape: &[usize], mut check: impl FnMut(&Pool2dParams, &[usize], Variant)) {
    for (size, stride) in [(2, 2), (3, 2)] {
        let pool = Pool2dParams { size, stride };
        let shape = pool.output_shape(y_shape).unwrap();
        for v in variants().into_iter().filter(|v| v.t == Technique::Direct) {
            v.run(|| check(&pool, &shape, v));
        }
    }
}

/// The pooled forward pass keeps the pooling's tie rule, bit for bit: a 1×1 convolution of
/// weight 1 and bias −0 passes ±0, ±1 and NaN through unchanged, so that windows hold ties
/// of ±0 and NaNs everywhere; the fused kernel must equal the direct convolution with its
/// activation, then the direct pooling, at every level (random values, as in the tables,
/// almost never tie).
#[test]
fn pooled_forward_keeps_the_first_maximum() {
    let p = Conv2dParams {
        stride: 1,
        padding: 0,
    };
    let values = [-0.0, 0.0, f32::NAN, -1.0, 1.0, 0.0, -0.0];
    let mut k = 0;
    let x = Array4::from_shape_fn((3, 1, 8, 12), |_| {
        k += 1;
        values[(k * 7 + k / 5) % values.len()]
    })
    .into_dyn();
    let w = ArrayD::from_elem(vec![5, 1, 1, 1], 1.0f32);
    let bias = ArrayD::from_elem(vec![5], -0.0f32);
    let y_shape = p.output_shape(x.shape(), w.shape()).unwrap();
    let (xv, wv, bv) = (v4(&x), v4(&w), v1(&bias));
    for_each_pooling(&y_shape, |pool, shape, v| {
        let scratch = &mut Scratch::new();
        let mut fused = nan(shape);
        conv2d_leaky_relu_pool_forward(&p, pool, xv, wv, bv, m4(&mut fused), scratch).unwrap();
        let mut z = nan(&y_shape);
        conv2d_leaky_relu_forward(v.t, &p, xv, wv, bv, m4(&mut z), scratch).unwrap();
        let (mut apart, mut argmax) = (nan(shape), Array4::zeros(to4(shape)));
        max_pool2d_forward(
            v.t,
            pool,
            v4(&z),
            m4(&mut apart),
            argmax.view_mut(),
            scratch,
        )
        .unwrap();
        for (a, b) in fused.iter().zip(&apart) {
            assert_eq!(a.to_bits(), b.to_bits(), "{pool:?} {v}: {a} vs {b}");
        }
    });
}

/// The pooled forward pass into a strided output (staged, then copied) equals its pass into
/// a contiguous one, pooled in registers (2×2) and apart (3×3), at every level.
#[test]
fn pooled_forward_into_a_strided_output() {
    use ndarray::s;
    let p = Conv2dParams {
        stride: 1,
        padding: 1,
    };
    let (x, w, bias) = (
        random(&[2, 3, 8, 12], 44),
        random(&[4, 3, 3, 3], 45),
        random(&[4], 46),
    );
    let y_shape = p.output_shape(x.shape(), w.shape()).unwrap();
    let (xv, wv, bv) = (v4(&x), v4(&w), v1(&bias));
    for_each_pooling(&y_shape, |pool, shape, v| {
        let scratch = &mut Scratch::new();
        let mut y = nan(shape);
        conv2d_leaky_relu_pool_forward(&p, pool, xv, wv, bv, m4(&mut y), scratch).unwrap();
        let mut big = nan(&[shape[0], shape[1] * 2, shape[2], shape[3]]);
        let strided = big
            .slice_mut(s![.., ..;2, .., ..])
            .into_dimensionality::<Ix4>()
            .unwrap();
        conv2d_leaky_relu_pool_forward(&p, pool, xv, wv, bv, strided, scratch).unwrap();
        let got = big.slice(s![.., ..;2, .., ..]).to_owned().into_dyn();
        common::assert_close(&format!("pooled {pool:?} strided {v}"), &got, &y);
    });
}

/// Kernels accept views of any layout: inputs and outputs that are slices with steps or
/// permuted axes of larger arrays give the same results as contiguous ones.
/// The dispatch of a convolution's forward pass, alone or with its activation.
type ConvLikeForward = fn(
    Technique,
    &Conv2dParams,
    ndarray::ArrayView4<f32>,
    ndarray::ArrayView4<f32>,
    ndarray::ArrayView1<f32>,
    ndarray::ArrayViewMut4<f32>,
    &mut Scratch,
) -> kernels::Result<()>;

#[test]
fn strided_views_match_contiguous_arrays() {
    use ndarray::s;
    let p = Conv2dParams {
        stride: 2,
        padding: 1,
    };
    let big_x = random(&[2, 6, 9, 18], 40);
    let x = big_x
        .slice(s![.., ..;2, .., ..;2])
        .into_dimensionality::<Ix4>()
        .unwrap();
    // Weights stored as [c, d, k, k] and seen as [d, c, k, k].
    let w_store = random(&[3, 4, 3, 3], 41);
    let w = w_store
        .view()
        .into_dimensionality::<Ix4>()
        .unwrap()
        .permuted_axes([1, 0, 2, 3]);
    let bias = random(&[4], 42);
    let y_shape = p.output_shape(x.shape(), w.shape()).unwrap();
    let dy = random(&y_shape, 43);
    for v in variants() {
        let t = v.t;
        v.run(|| {
            let mut scratch = Scratch::new();
            // The convolution, and the one fused with its activation, through a staged
            // (strided) output.
            let forwards: [(&str, ConvLikeForward); 2] = [
                ("conv forward", conv2d_forward),
                ("conv + leaky ReLU forward", conv2d_leaky_relu_forward),
            ];
            for (what, forward) in forwards {
                let mut y = nan(&y_shape);
                let (x_own, w_own) = (x.to_owned(), w.to_owned());
                let (xo, wo) = (x_own.view(), w_own.view());
                forward(t, &p, xo, wo, v1(&bias), m4(&mut y), &mut scratch).unwrap();
                let mut y_big = nan(&[y_shape[0], y_shape[1] * 2, y_shape[2], y_shape[3]]);
                let y_strided = y_big
                    .slice_mut(s![.., ..;2, .., ..])
                    .into_dimensionality::<Ix4>()
                    .unwrap();
                forward(t, &p, x, w, v1(&bias), y_strided, &mut scratch).unwrap();
                common::assert_close(
                    &format!("{what} strided {v}"),
                    &y_big.slice(s![.., ..;2, .., ..]).to_owned().into_dyn(),
                    &y,
                );
            }

            let (mut dx, mut dw, mut db) = (nan(x.shape()), nan(w.shape()), nan(&[4]));
            conv2d_backward(
                t,
                &p,
                x.to_owned().view(),
                w.to_owned().view(),
                v4(&dy),
                Some(m4(&mut dx)),
                m4(&mut dw),
                m1(&mut db),
                &mut scratch,
            )
            .unwrap();
            let mut dw_store = nan(&[3, 4, 3, 3]);
            let dw_strided = dw_store
                .view_mut()
                .into_dimensionality::<Ix4>()
                .unwrap()
                .permuted_axes([1, 0, 2, 3]);
            let dy_t = dy
                .view()
                .into_dimensionality::<Ix4>()
                .unwrap()
                .reversed_axes()
                .to_owned();
            let dy_strided = dy_t.view().reversed_axes();
            let (mut dx_big, mut db2) = (nan(big_x.shape()), nan(&[4]));
            let dx_strided = dx_big
                .slice_mut(s![.., ..;2, .., ..;2])
                .into_dimensionality::<Ix4>()
                .unwrap();
            conv2d_backward(
                t,
                &p,
                x,
                w,
                dy_strided,
                Some(dx_strided),
                dw_strided,
                m1(&mut db2),
                &mut scratch,
            )
            .unwrap();
            let dx2 = dx_big.slice(s![.., ..;2, .., ..;2]).to_owned().into_dyn();
            common::assert_close(&format!("conv dx strided {v}"), &dx2, &dx);
            common::assert_close(
                &format!("conv dw strided {v}"),
                &dw_store.view().permuted_axes(vec![1, 0, 2, 3]).to_owned(),
                &dw,
            );
            common::assert_close(&format!("conv dbias strided {v}"), &db2, &db);

            let pool = Pool2dParams { size: 2, stride: 2 };
            let shape = pool.output_shape(x.shape()).unwrap();
            let (mut y1, mut a1) = (nan(&shape), Array4::from_elem(to4(&shape), 0u32));
            max_pool2d_forward(
                t,
                &pool,
                x.to_owned().view(),
                m4(&mut y1),
                a1.view_mut(),
                &mut scratch,
            )
            .unwrap();
            let (mut y2, mut a2) = (nan(&shape), Array4::from_elem(to4(&shape), 0u32));
            max_pool2d_forward(t, &pool, x, m4(&mut y2), a2.view_mut(), &mut scratch).unwrap();
            common::assert_close(&format!("pool strided {v}"), &y2, &y1);
            assert_eq!(a1, a2, "pool argmax strided {v}");

            let fx = random(&[4, 6], 44);
            let fw_t = random(&[6, 3], 45);
            let fb = random(&[3], 46);
            let (mut f1, mut f2) = (nan(&[4, 3]), nan(&[4, 3]));
            fc_forward(
                t,
                v2(&fx),
                v2(&fw_t).t().to_owned().view(),
                v1(&fb),
                m2(&mut f1),
                &mut scratch,
            )
            .unwrap();
            let fw_view = fw_t
                .view()
                .into_dimensionality::<Ix2>()
                .unwrap()
                .reversed_axes();
            fc_forward(t, v2(&fx), fw_view, v1(&fb), m2(&mut f2), &mut scratch).unwrap();
            common::assert_close(&format!("fc strided {v}"), &f2, &f1);
        });
    }
}
