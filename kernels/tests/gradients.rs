//! Each backward pass is the derivative of its forward: central finite differences of
//! `L = Σ y·r` (r random, accumulated in f64) against the backward's gradients for dy = r,
//! at every element of every input, for every technique.
//!
//! Tolerance: `|fd − analytic| ≤ 2e-3 · max(1, max |analytic|)`. Convolution, pooling, the
//! fully connected layer and the leaky ReLU are linear in each input around the test point
//! (pooling inputs are spaced 0.01 apart, leaky ReLU inputs kept 0.05 from zero), so a large
//! step leaves only f32 rounding; sigmoid and softmax use a small step. A gradient read from
//! or written to a wrong index is off by O(1) of the scale, far past the tolerance.

mod common;

use common::{labels, m1, m2, m4, random, v1, v2, v4, variants};
use kernels::*;
use ndarray::{Array4, ArrayD};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

const GRAD_TOL: f64 = 2e-3;

/// Compares `analytic`, the gradient of `loss` at `x`, with central differences of step `eps`.
fn assert_gradient(
    what: &str,
    x: &ArrayD<f32>,
    analytic: &ArrayD<f32>,
    eps: f32,
    loss: impl Fn(&ArrayD<f32>) -> f64,
) {
    assert_eq!(x.shape(), analytic.shape(), "{what}: gradient shape");
    let scale = analytic
        .iter()
        .fold(1.0f64, |m, &v| m.max(f64::from(v).abs()));
    for (index, &an) in analytic.indexed_iter() {
        let mut moved = x.clone();
        moved[&index] = x[&index] + eps;
        let up = loss(&moved);
        moved[&index] = x[&index] - eps;
        let down = loss(&moved);
        let fd = (up - down) / (2.0 * f64::from(eps));
        assert!(
            (fd - f64::from(an)).abs() <= GRAD_TOL * scale,
            "{what}: at {index:?} finite difference {fd}, backward {an}"
        );
    }
}

/// `Σ y·r` in f64.
fn weighted_sum(y: &ArrayD<f32>, r: &ArrayD<f32>) -> f64 {
    y.iter()
        .zip(r)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

#[test]
fn conv_backward_is_the_derivative_of_forward() {
    // (x shape, filters, kernel, stride, padding): the seed's 5×5 "same" convolution, and a
    // strided, padded one whose stride does not tile the input.
    let cases = [([2, 2, 8, 8], 3, 5, 1, 2), ([2, 3, 7, 6], 4, 3, 2, 1)];
    for (x_shape, d, k, stride, padding) in cases {
        let p = Conv2dParams { stride, padding };
        let x = random(&x_shape, 20);
        let w = random(&[d, x_shape[1], k, k], 21);
        let bias = random(&[d], 22);
        let y_shape = p.output_shape(&x_shape, w.shape()).unwrap();
        let r = random(&y_shape, 23);
        let forward = |x: &ArrayD<f32>, w: &ArrayD<f32>, bias: &ArrayD<f32>| {
            let mut y = ArrayD::zeros(y_shape.as_slice());
            let yv = m4(&mut y);
            conv2d_forward_naive(&p, v4(x), v4(w), v1(bias), yv, &mut Scratch::new()).unwrap();
            weighted_sum(&y, &r)
        };
        for v in variants() {
            let t = v.t;
            v.run(|| {
                let (mut dx, mut dw, mut dbias) = (x.clone(), w.clone(), bias.clone());
                conv2d_backward(
                    t,
                    &p,
                    v4(&x),
                    v4(&w),
                    v4(&r),
                    Some(m4(&mut dx)),
                    m4(&mut dw),
                    m1(&mut dbias),
                    &mut Scratch::new(),
                )
                .unwrap();
                let what = format!("conv {x_shape:?} k{k} s{stride} p{padding} {v}");
                assert_gradient(&format!("{what} dx"), &x, &dx, 0.25, |x| {
                    forward(x, &w, &bias)
                });
                assert_gradient(&format!("{what} dw"), &w, &dw, 0.25, |w| {
                    forward(&x, w, &bias)
                });
                assert_gradient(&format!("{what} dbias"), &bias, &dbias, 0.25, |b| {
                    forward(&x, &w, b)
                });
            });
        }
    }
}

#[test]
fn pool_backward_is_the_derivative_of_forward() {
    // (x shape, window, stride): the seed's 2×2/2, and overlapping 3×3/2 windows.
    for (x_shape, size, stride) in [([2, 3, 6, 7], 2, 2), ([2, 2, 7, 9], 3, 2)] {
        let p = Pool2dParams { size, stride };
        // Distinct values 0.01 apart, so a step of 0.002 never changes a window's maximum.
        let n: usize = x_shape.iter().product();
        let mut values: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
        values.shuffle(&mut StdRng::seed_from_u64(24));
        let x = ArrayD::from_shape_vec(x_shape.as_slice(), values).unwrap();
        let y_shape = p.output_shape(&x_shape).unwrap();
        let r = random(&y_shape, 25);
        let forward = |x: &ArrayD<f32>| {
            let mut y = ArrayD::zeros(y_shape.as_slice());
            let mut argmax = Array4::zeros(y_shape);
            let yv = m4(&mut y);
            max_pool2d_forward_naive(&p, v4(x), yv, argmax.view_mut(), &mut Scratch::new())
                .unwrap();
            (weighted_sum(&y, &r), argmax)
        };
        let (_, argmax) = forward(&x);
        for v in variants() {
            let t = v.t;
            v.run(|| {
                let mut dx = x.clone();
                let dxv = m4(&mut dx);
                max_pool2d_backward(t, &p, v4(&r), argmax.view(), dxv, &mut Scratch::new())
                    .unwrap();
                let what = format!("pool {x_shape:?} f{size} s{stride} {v} dx");
                assert_gradient(&what, &x, &dx, 0.002, |x| forward(x).0);
            });
        }
    }
}

#[test]
fn fc_backward_is_the_derivative_of_forward() {
    let (b, i, o) = (3, 7, 5);
    let (x, w, bias) = (random(&[b, i], 26), random(&[o, i], 27), random(&[o], 28));
    let r = random(&[b, o], 29);
    let forward = |x: &ArrayD<f32>, w: &ArrayD<f32>, bias: &ArrayD<f32>| {
        let mut y = ArrayD::zeros(vec![b, o]);
        let yv = m2(&mut y);
        fc_forward_naive(v2(x), v2(w), v1(bias), yv, &mut Scratch::new()).unwrap();
        weighted_sum(&y, &r)
    };
    for t in Technique::ALL {
        let (mut dx, mut dw, mut dbias) = (x.clone(), w.clone(), bias.clone());
        fc_backward(
            t,
            v2(&x),
            v2(&w),
            v2(&r),
            m2(&mut dx),
            m2(&mut dw),
            m1(&mut dbias),
            &mut Scratch::new(),
        )
        .unwrap();
        assert_gradient(&format!("fc {t} dx"), &x, &dx, 0.25, |x| {
            forward(x, &w, &bias)
        });
        assert_gradient(&format!("fc {t} dw"), &w, &dw, 0.25, |w| {
            forward(&x, w, &bias)
        });
        assert_gradient(&format!("fc {t} dbias"), &bias, &dbias, 0.25, |b| {
            forward(&x, &w, b)
        });
    }
}

type Forward = fn(Technique, ndarray::ArrayViewD<f32>, ndarray::ArrayViewMutD<f32>) -> Result<()>;
type Backward = fn(
    Technique,
    ndarray::ArrayViewD<f32>,
    ndarray::ArrayViewD<f32>,
    ndarray::ArrayViewMutD<f32>,
) -> Result<()>;

#[test]
fn activation_backward_is_the_derivative_of_forward() {
    let shape = [2, 3, 4, 5];
    // Leaky ReLU inputs kept 0.05 or more from its kink at 0, so the step 0.02 stays linear.
    let relu_x = random(&shape, 30).mapv(|v| 3.0 * (v + 0.05f32.copysign(v)));
    let sigmoid_x = random(&shape, 31).mapv(|v| 4.0 * v);
    let cases: [(&str, Forward, Backward, ArrayD<f32>, f32); 2] = [
        (
            "leaky_relu",
            leaky_relu_forward,
            leaky_relu_backward,
            relu_x,
            0.02,
        ),
        (
            "sigmoid",
            sigmoid_forward,
            sigmoid_backward,
            sigmoid_x,
            0.01,
        ),
    ];
    let r = random(&shape, 32);
    for (name, forward, backward, x, eps) in cases {
        for t in Technique::ALL {
            let output = |x: &ArrayD<f32>| {
                let mut y = ArrayD::zeros(x.shape());
                forward(Technique::Naive, x.view(), y.view_mut()).unwrap();
                y
            };
            let y = output(&x);
            let mut dx = ArrayD::zeros(x.shape());
            backward(t, y.view(), r.view(), dx.view_mut()).unwrap();
            assert_gradient(&format!("{name} {t} dx"), &x, &dx, eps, |x| {
                weighted_sum(&output(x), &r)
            });
        }
    }
}

#[test]
fn softmax_backward_is_the_derivative_of_the_mean_loss() {
    let (b, k) = (4, 10);
    let logits = random(&[b, k], 33).mapv(|v| 3.0 * v);
    let labels = labels(b, k, 34);
    let loss = |z: &ArrayD<f32>| {
        let mut probs = ArrayD::zeros(vec![b, k]);
        let pv = m2(&mut probs);
        f64::from(
            softmax_cross_entropy_forward_naive(v2(z), labels.view(), pv, &mut Scratch::new())
                .unwrap(),
        )
    };
    for t in Technique::ALL {
        let mut probs = ArrayD::zeros(vec![b, k]);
        let pv = m2(&mut probs);
        softmax_cross_entropy_forward(t, v2(&logits), labels.view(), pv, &mut Scratch::new())
            .unwrap();
        let mut dlogits = ArrayD::zeros(vec![b, k]);
        let dv = m2(&mut dlogits);
        softmax_cross_entropy_backward(t, v2(&probs), labels.view(), dv).unwrap();
        assert_gradient(
            &format!("softmax {t} dlogits"),
            &logits,
            &dlogits,
            0.01,
            loss,
        );
    }
}

#[test]
fn softmax_loss_is_the_mean_negative_log_likelihood() {
    // Two examples whose probabilities are known in closed form.
    let logits = ndarray::arr2(&[[0.0f32, 0.0, 0.0, 0.0], [2.0f32.ln(), 0.0, 0.0, 0.0]]);
    let labels = ndarray::arr1(&[3usize, 0]);
    let want = (4.0f32.ln() + (5.0f32 / 2.0).ln()) / 2.0;
    for t in Technique::ALL {
        let mut probs = ndarray::Array2::zeros((2, 4));
        let loss = softmax_cross_entropy_forward(
            t,
            logits.view(),
            labels.view(),
            probs.view_mut(),
            &mut Scratch::new(),
        )
        .unwrap();
        assert!(
            (loss - want).abs() < 1e-6,
            "{t}: loss {loss}, expected {want}"
        );
        assert!(
            (probs[[1, 0]] - 0.4).abs() < 1e-6,
            "{t}: p = {}",
            probs[[1, 0]]
        );
    }
}
