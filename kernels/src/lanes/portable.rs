//! 8 lanes in an array, for every target: the compiler vectorises each operation for the
//! baseline instruction set (SSE2 on x86-64, NEON on aarch64).

use super::Lanes;

/// 8 lanes in an array.
#[derive(Clone, Copy)]
pub(crate) struct Portable([f32; 8]);

impl Lanes for Portable {
    const N: usize = 8;

    #[inline(always)]
    fn zero() -> Self {
        Self([0.0; 8])
    }

    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([v; 8])
    }

    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] + a.0[l] * b.0[l]))
    }

    #[inline(always)]
    fn sum(self) -> f32 {
        self.0.iter().sum()
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l].max(other.0[l])))
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable f32s at p; read_unaligned needs no alignment.
        Self(unsafe { p.cast::<[f32; 8]>().read_unaligned() })
    }

    #[inline(always)]
    unsafe fn load_halves(lo: *const f32, hi: *const f32) -> Self {
        // SAFETY: the caller guarantees 4 readable f32s at lo and at hi.
        let (lo, hi) = unsafe {
            (
                lo.cast::<[f32; 4]>().read_unaligned(),
                hi.cast::<[f32; 4]>().read_unaligned(),
            )
        };
        Self(std::array::from_fn(
            |l| if l < 4 { lo[l] } else { hi[l - 4] },
        ))
    }

    #[inline(always)]
    fn upper(self) -> Self {
        Self(std::array::from_fn(|l| self.0[(l + 4) % 8]))
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32, n: usize) {
        debug_assert!(n <= Self::N);
        // SAFETY: the caller guarantees n writable f32s at p, not borrowed elsewhere.
        unsafe { std::ptr::copy_nonoverlapping(self.0.as_ptr(), p, n) }
    }
}
