//! The errors every command can end with.

use thiserror::Error;

/// Everything that can stop a command, each with a one-line message naming what is wrong.
#[derive(Debug, Error)]
pub enum Error {
    /// Missing or malformed CIFAR-10 files.
    #[error("{0}")]
    Data(String),
    /// An invalid architecture.
    #[error("architecture: {0}")]
    Arch(String),
    /// An unreadable or mismatched checkpoint.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// An invalid hyper-parameter or argument.
    #[error("{0}")]
    Usage(String),
    /// Training diverged.
    #[error("{0}")]
    Diverged(String),
    /// A kernel refused its arguments (a bug if it happens in training).
    #[error("kernel: {0}")]
    Kernel(#[from] kernels::KernelError),
    /// A file could not be written.
    #[error("{0}")]
    Io(String),
    /// A test's injected fault stopped the run after this operation of its directory.
    #[error("stopped by an injected fault after operation {0}")]
    Injected(u64),
}

/// The result of every fallible step.
pub type Result<T> = std::result::Result<T, Error>;
