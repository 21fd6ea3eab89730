use ndarray::{ArrayView2, ArrayViewMut2};

/// `c ← alpha·a·b + beta·c` for `a [m, k]`, `b [k, n]`, `c [m, n]`, any strides, through
/// matrixmultiply's `sgemm`. With `beta = 0`, `c`'s previous contents are never read.
pub(crate) fn gemm(
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    mut c: ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert!(
        b.nrows() == k && c.dim() == (m, n),
        "gemm shapes [{m}, {k}]·{:?} → {:?}",
        b.shape(),
        c.shape()
    );
    let (sa, sb, sc) = (a.strides(), b.strides(), c.strides().to_vec());
    // SAFETY: each pointer is the [0, 0] element of a live ndarray view whose strides address
    // only elements inside that view for every index within the asserted shapes; `c` is a
    // unique mutable view, so its elements do not alias each other or `a` and `b`.
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
}
