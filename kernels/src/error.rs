use thiserror::Error;

/// Why a kernel refused its arguments. Every message starts with the layer and pass
/// (`conv2d forward: …`) and names the shapes or values at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KernelError {
    /// A hyper-parameter that cannot work: stride 0, an empty dimension, a window larger than
    /// its padded input, a label past the number of classes.
    #[error("{layer}: {detail}")]
    InvalidArgument {
        /// Layer and pass, e.g. `conv2d forward`.
        layer: &'static str,
        /// What is wrong, with the values at fault.
        detail: String,
    },
    /// Two arguments whose shapes do not fit together.
    #[error("{layer}: {detail}")]
    ShapeMismatch {
        /// Layer and pass, e.g. `conv2d backward`.
        layer: &'static str,
        /// Which shapes disagree, and how.
        detail: String,
    },
}

/// The result of every kernel.
pub type Result<T> = std::result::Result<T, KernelError>;

pub(crate) fn invalid(layer: &'static str, detail: impl Into<String>) -> KernelError {
    KernelError::InvalidArgument {
        layer,
        detail: detail.into(),
    }
}

pub(crate) fn mismatch(layer: &'static str, detail: impl Into<String>) -> KernelError {
    KernelError::ShapeMismatch {
        layer,
        detail: detail.into(),
    }
}

/// Checks that the argument `name` has shape `want`.
pub(crate) fn expect_shape(
    layer: &'static str,
    name: &str,
    got: &[usize],
    want: &[usize],
) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(mismatch(
            layer,
            format!("{name} has shape {got:?}, expected {want:?}"),
        ))
    }
}

/// Checks that no dimension of the argument `name` is zero.
pub(crate) fn expect_nonempty(layer: &'static str, name: &str, shape: &[usize]) -> Result<()> {
    if shape.contains(&0) {
        Err(invalid(
            layer,
            format!("{name} has shape {shape:?}, with an empty dimension"),
        ))
    } else {
        Ok(())
    }
}
