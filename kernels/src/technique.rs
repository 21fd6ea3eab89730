use std::fmt;
use std::str::FromStr;

/// How a layer's loops are arranged: the four techniques of the seed's optimisation chapter,
/// and a fifth, direct convolution.
///
/// Each layer documents what a technique means for it; where a technique has no distinct
/// meaning (elementwise layers have no windows to unfold), the layer's docs say which one it
/// runs instead, and the name still works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Technique {
    /// Every index a loop, scalar multiply-add, indexed access (the seed's technique 1).
    Naive,
    /// One loop per output element, whose value is a whole-window product-and-sum
    /// (the seed's technique 2, `np.sum(w[d] * window)`).
    PerOutput,
    /// One loop per output position; at each, broadcast products over the whole batch and all
    /// filters, reduced along axes (the seed's technique 3).
    AxisReduce,
    /// Unfold the windows into a matrix and do one matrix product with `sgemm`; backward with
    /// GEMMs and col2im (the seed's technique 4, as BLAS-based frameworks do it).
    Im2colGemm,
    /// No unfolded matrix: loops over a padded copy of the input, register-blocked over
    /// several filters and output vectors, in explicit SIMD lanes (what oneDNN-style
    /// libraries do for small channel counts). Layers without windows run their fastest
    /// vectorised technique under this name; their docs say which.
    Direct,
}

impl Technique {
    /// All five: the seed's four in its order (naive first), then direct.
    pub const ALL: [Technique; 5] = [
        Technique::Naive,
        Technique::PerOutput,
        Technique::AxisReduce,
        Technique::Im2colGemm,
        Technique::Direct,
    ];

    /// The short name used on command lines and in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Technique::Naive => "naive",
            Technique::PerOutput => "per-output",
            Technique::AxisReduce => "axis-reduce",
            Technique::Im2colGemm => "im2col",
            Technique::Direct => "direct",
        }
    }
}

impl fmt::Display for Technique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Technique {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Technique::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Technique::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "unknown technique {s:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}
