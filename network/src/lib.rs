//! The seed's CIFAR-10 network as a trainer for users: data loading, the network built from a
//! layer list, SGD with momentum and weight decay, data-parallel training over threads with the
//! fastest kernel technique per layer, runs that own their directory and survive a kill at any
//! instant, checkpoints in PyTorch's naming, evaluation, and pictures: training curves, the
//! confusion matrix, occlusion and responsibility maps.

pub mod arch;
pub mod batch;
pub mod bench;
pub mod budget;
pub mod commands;
pub mod config;
pub mod data;
pub mod disk;
pub mod error;
pub mod events;
pub mod history;
pub mod infer;
pub mod layers_view;
pub mod model;
pub mod optim;
pub mod pictures;
pub mod run;
pub mod saliency;
pub mod serve;
pub mod sizing;
pub mod store;
pub mod sweep;
pub mod tensors;
pub mod train;

pub use error::{Error, Result};
