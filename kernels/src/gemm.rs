use ndarray::{ArrayView2, ArrayViewMut2};

use crate::error::{Result, mismatch};

/// `c ← alpha·a·b + beta·c` for a `[m, k]`, b `[k, n]`, c `[m, n]`, any strides, with
/// matrixmultiply's `sgemm`. With `beta = 0`, c's previous contents are never read.
pub fn gemm(
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    mut c: ArrayViewMut2<f32>,
) -> Result<()> {
    let (m, k) = a.dim();
    let n = b.ncols();
    if b.nrows() != k || c.dim() != (m, n) {
        return Err(mismatch(
            "gemm",
            format!(
                "a {:?} · b {:?} does not give c {:?}",
                a.shape(),
                b.shape(),
                c.shape()
            ),
        ));
    }
    let (sa, sb, sc) = (a.strides(), b.strides(), c.strides().to_vec());
    // SAFETY: each pointer is the [0, 0] element of a live ndarray view whose strides address
    // only elements inside that view for every index within the checked shapes; `c` is a
    // unique mutable view, so its elements alias neither each other nor `a` and `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            sa[0],
            sa[1],
            b.as_ptr(),
            sb[0],
            sb[1],
            beta,
            c.as_mut_ptr(),
            sc[0],
            sc[1],
        );
    }
    Ok(())
}
