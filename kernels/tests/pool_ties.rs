//! The max-pool tie rule, in every technique at every instruction-set level: the gradient goes
//! to the first maximum of a window in row-major order.

mod common;

use common::variants;
use kernels::*;
use ndarray::{Array2, Array4, arr2};

/// Runs forward and backward (dy = 1 + output index) with technique `t` on one plane;
/// returns the argmax of each window and the plane of dx.
fn pool_plane(
    t: Technique,
    x: ndarray::Array2<f32>,
    size: usize,
    stride: usize,
) -> (Vec<u32>, Array2<f32>) {
    let p = Pool2dParams { size, stride };
    let (h, w) = x.dim();
    let x = x.into_shape_with_order((1, 1, h, w)).unwrap();
    let shape = p.output_shape(x.shape()).unwrap();
    let mut y = Array4::from_elem(shape, f32::NAN);
    let mut argmax = Array4::from_elem(shape, u32::MAX);
    let mut scratch = Scratch::new();
    max_pool2d_forward(
        t,
        &p,
        x.view(),
        y.view_mut(),
        argmax.view_mut(),
        &mut scratch,
    )
    .unwrap();
    let dy = Array4::from_shape_fn(shape, |(_, _, i, j)| (1 + i * shape[3] + j) as f32);
    let mut dx = Array4::from_elem(x.raw_dim(), f32::NAN);
    max_pool2d_backward(t, &p, dy.view(), argmax.view(), dx.view_mut(), &mut scratch).unwrap();
    let plane = dx.into_shape_with_order((h, w)).unwrap();
    (argmax.into_raw_vec_and_offset().0, plane)
}

#[test]
fn all_equal_windows_route_to_their_top_left() {
    // A plane of zeros, as after a ReLU: every window is one long tie.
    for v in variants() {
        let t = v.t;
        v.run(|| {
            let (argmax, dx) = pool_plane(t, ndarray::Array2::zeros((4, 4)), 2, 2);
            assert_eq!(argmax, vec![0, 2, 8, 10], "{v}");
            let want = arr2(&[
                [1.0, 0.0, 2.0, 0.0],
                [0.0; 4],
                [3.0, 0.0, 4.0, 0.0],
                [0.0; 4],
            ]);
            assert_eq!(dx, want, "{v}");
        });
    }
}

#[test]
fn a_tie_goes_to_the_first_maximum_in_row_major_order() {
    // Window 1 ties at (0, 1) and (1, 1); window 2 at (1, 0) and (1, 1), after a smaller
    // (0, 0); window 3 is negative with a tie at (0, 0) and (1, 0).
    let x = arr2(&[
        [1.0, 5.0, 2.0, 1.0, -0.5, -0.7],
        [0.0, 5.0, 3.0, 3.0, -0.5, -0.9],
    ]);
    for v in variants() {
        let t = v.t;
        v.run(|| {
            let (argmax, dx) = pool_plane(t, x.clone(), 2, 2);
            assert_eq!(argmax, vec![1, 8, 4], "{v}");
            let want = arr2(&[
                [0.0, 1.0, 0.0, 0.0, 3.0, 0.0],
                [0.0, 0.0, 2.0, 0.0, 0.0, 0.0],
            ]);
            assert_eq!(dx, want, "{v}");
        });
    }
}

#[test]
fn overlapping_windows_sum_at_a_shared_first_maximum() {
    // 3×3 windows with stride 1 over a 3×4 plane of ties: both windows' first maximum is the
    // element at (0, 0) and (0, 1) respectively; a strict maximum at (2, 2) lies in both
    // windows and takes both gradients.
    let x = arr2(&[
        [7.0, 7.0, 7.0, 7.0],
        [7.0, 7.0, 7.0, 7.0],
        [7.0, 7.0, 7.0, 7.0],
    ]);
    let mut peak = x.clone();
    peak[[2, 2]] = 8.0;
    for v in variants() {
        let t = v.t;
        v.run(|| {
            let (argmax, dx) = pool_plane(t, x.clone(), 3, 1);
            assert_eq!(argmax, vec![0, 1], "{v}");
            assert_eq!(dx[[0, 0]], 1.0, "{v}");
            assert_eq!(dx[[0, 1]], 2.0, "{v}");
            assert_eq!(dx.sum(), 3.0, "{v}");
            let (argmax, dx) = pool_plane(t, peak.clone(), 3, 1);
            assert_eq!(argmax, vec![10, 10], "{v}");
            assert_eq!(dx[[2, 2]], 3.0, "{v}");
            assert_eq!(dx.sum(), 3.0, "{v}");
        });
    }
}
