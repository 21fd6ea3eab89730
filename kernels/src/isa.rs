//! The instruction-set level the direct kernels run at, chosen at run time.
//!
//! One binary runs on every CPU of its architecture: the direct convolution is compiled once
//! per level (each instance inside a `#[target_feature]` function, see `lanes`), and every
//! call picks the level to run, in this order:
//!
//! 1. the level forced on the calling thread by [`with_isa`] (what tests use: each test thread
//!    forces its own, so tests running in parallel do not race);
//! 2. the level forced for the process by [`force_isa`] (the `network --isa` flag);
//! 3. the environment variable [`ISA_ENV`] (`KERNELS_ISA=avx512|avx2|portable`), read once;
//! 4. the best level the CPU supports, [`Isa::detect`].
//!
//! A level the CPU lacks is refused with an [`IsaError`] wherever it is requested, so a kernel
//! never runs instructions the CPU does not have.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that forces a level for the whole process.
pub const ISA_ENV: &str = "KERNELS_ISA";

/// A level of vector instructions the direct kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Plain arrays of 8 lanes that the compiler vectorises for the baseline target (SSE2 on
    /// x86-64, NEON on aarch64): runs everywhere.
    Portable,
    /// 8 lanes in 256-bit registers with fused multiply-add (x86-64 AVX2 + FMA), blocked for
    /// 16 vector registers.
    Avx2,
    /// 16 lanes in 512-bit registers (x86-64 AVX-512F), blocked for 32 vector registers.
    Avx512,
}

impl Isa {
    /// Every level, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The level's name, as [`FromStr`] reads it: `portable`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the level.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The best level this CPU supports.
    pub fn detect() -> Isa {
        Self::available().last().unwrap_or(Isa::Portable)
    }

    /// The levels this CPU supports, slowest first (always at least [`Isa::Portable`]).
    pub fn available() -> impl DoubleEndedIterator<Item = Isa> {
        Self::ALL.into_iter().filter(|isa| isa.supported())
    }

    /// `self`, or an error naming it if this CPU cannot run it.
    pub fn checked(self) -> Result<Isa, IsaError> {
        if self.supported() {
            Ok(self)
        } else {
            Err(IsaError(format!(
                "instruction set {} is not supported by this CPU (supported: {})",
                self.name(),
                Self::available()
                    .map(Isa::name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// The level forced by [`ISA_ENV`], if it is set: an error if it names no level or one
    /// this CPU lacks.
    pub fn from_env() -> Result<Option<Isa>, IsaError> {
        match std::env::var(ISA_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => Err(IsaError(format!("{ISA_ENV}: {e}"))),
            Ok(name) => name
                .parse::<Isa>()
                .and_then(Isa::checked)
                .map(Some)
                .map_err(|e| IsaError(format!("{ISA_ENV}: {e}"))),
        }
    }

    /// The level a kernel called now on this thread runs at (see the module's order).
    ///
    /// # Panics
    /// If [`ISA_ENV`] is decisive and invalid; programs call [`Isa::from_env`] first to
    /// report that as an error.
    pub fn active() -> Isa {
        if let Some(isa) = THREAD_ISA.get() {
            return isa;
        }
        match PROCESS_ISA.load(Ordering::Relaxed) {
            0 => {}
            n => return Self::ALL[usize::from(n - 1)],
        }
        static FROM_ENV: OnceLock<Isa> = OnceLock::new();
        *FROM_ENV.get_or_init(|| match Isa::from_env() {
            Ok(isa) => isa.unwrap_or_else(Isa::detect),
            Err(e) => panic!("{e}"),
        })
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = IsaError;

    fn from_str(s: &str) -> Result<Isa, IsaError> {
        Self::ALL
            .into_iter()
            .find(|isa| isa.name() == s)
            .ok_or_else(|| {
                IsaError(format!(
                    "unknown instruction set {s:?} (expected portable, avx2 or avx512)"
                ))
            })
    }
}

/// A level that does not exist or that this CPU cannot run; one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsaError(String);

impl fmt::Display for IsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IsaError {}

/// The level forced for the process: 0 for none, else its index in [`Isa::ALL`] + 1.
static PROCESS_ISA: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// The level forced on this thread by [`with_isa`].
    static THREAD_ISA: Cell<Option<Isa>> = const { Cell::new(None) };
}

/// Forces `isa` for every later kernel call in the process, on every thread (those inside
/// [`with_isa`] excepted); an error, and no change, if this CPU cannot run it.
pub fn force_isa(isa: Isa) -> Result<(), IsaError> {
    let isa = isa.checked()?;
    let index = Isa::ALL
        .iter()
        .position(|&l| l == isa)
        .expect("every level is in ALL");
    PROCESS_ISA.store(index as u8 + 1, Ordering::Relaxed);
    Ok(())
}

/// Runs `f` with `isa` forced on the calling thread only (kernels that `f` calls on other
/// threads do not see it); an error, without running `f`, if this CPU cannot run it.
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> Result<R, IsaError> {
    struct Restore(Option<Isa>);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREAD_ISA.set(self.0);
        }
    }
    let _restore = Restore(THREAD_ISA.replace(Some(isa.checked()?)));
    Ok(f())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
        }
        let e = "sse9".parse::<Isa>().unwrap_err().to_string();
        assert!(e.contains("sse9") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn a_thread_level_applies_inside_and_is_restored_after() {
        let before = Isa::active();
        let inside = with_isa(Isa::Portable, Isa::active).unwrap();
        assert_eq!(inside, Isa::Portable);
        assert_eq!(Isa::active(), before);
        assert!(Isa::detect().supported());
        for isa in Isa::ALL.into_iter().filter(|isa| !isa.supported()) {
            assert!(with_isa(isa, || ()).is_err());
        }
    }
}
