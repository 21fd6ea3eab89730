//! The network's layer list, as the seed writes it: `Input`, `Convolutional`, `Pooling`,
//! `FullyConnected`, `ReLU`, `Sigmoid`, `Softmax`, with optional per-layer rates. The default is
//! the seed's CIFAR-10 network; `--arch FILE` reads the same list as JSON.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::check_rates;
use crate::error::{Error, Result};

/// Optional per-layer overrides of the learning rate, momentum and weight decay, as the
/// seed's rate tuples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Learning rate α.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f32>,
    /// Momentum η.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f32>,
    /// Weight decay ε.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay: Option<f32>,
}

/// One entry of the layer list.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LayerSpec {
    /// The input: channels × height × width.
    Input {
        /// Channels.
        channels: usize,
        /// Height.
        height: usize,
        /// Width.
        width: usize,
    },
    /// Convolution: `filters` of `size × size`, with stride and padding (`-1`: "same", as in
    /// the seed, for stride 1 and an odd size).
    Conv {
        /// Output channels.
        filters: usize,
        /// Kernel side.
        size: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding; -1 for "same" (default 0).
        #[serde(default)]
        pad: i64,
        /// Per-layer rates.
        #[serde(default, flatten)]
        rates: Rates,
    },
    /// Max pooling.
    Pool {
        /// Window side.
        size: usize,
        /// Stride.
        stride: usize,
    },
    /// Fully connected.
    Fc {
        /// Outputs.
        outputs: usize,
        /// Per-layer rates.
        #[serde(default, flatten)]
        rates: Rates,
    },
    /// Leaky ReLU, `max(x, 0.01·x)`.
    Relu,
    /// Sigmoid.
    Sigmoid,
    /// Softmax with cross-entropy: the last layer.
    Softmax,
}

fn one() -> usize {
    1
}

/// The seed's network: IN 3×32×32 → conv16 f5 p2 → ReLU → pool2 → conv20 → ReLU → pool2 →
/// conv20 → ReLU → pool2 → fc10 → softmax.
pub fn seed_network() -> Vec<LayerSpec> {
    let conv = |filters| LayerSpec::Conv {
        filters,
        size: 5,
        stride: 1,
        pad: 2,
        rates: Rates::default(),
    };
    let pool = LayerSpec::Pool { size: 2, stride: 2 };
    vec![
        LayerSpec::Input {
            channels: 3,
            height: 32,
            width: 32,
        },
        conv(16),
        LayerSpec::Relu,
        pool,
        conv(20),
        LayerSpec::Relu,
        pool,
        conv(20),
        LayerSpec::Relu,
        pool,
        LayerSpec::Fc {
            outputs: 10,
            rates: Rates::default(),
        },
        LayerSpec::Softmax,
    ]
}

/// Checks that the network of `arch` takes CIFAR-10 images to the 10 classes (from the shapes
/// alone: nothing is allocated).
pub fn check_cifar10(arch: &[LayerSpec]) -> Result<()> {
    use crate::data::{CHANNELS, CLASSES, SIDE};
    let shapes = crate::model::Network::shapes(arch)?;
    let input = &shapes[0];
    if input[..] != [CHANNELS, SIDE, SIDE] {
        let dims: Vec<String> = input.iter().map(ToString::to_string).collect();
        return Err(Error::Arch(format!(
            "layer 0 (input) takes {} images, but CIFAR-10 images are {CHANNELS}×{SIDE}×{SIDE}",
            dims.join("×")
        )));
    }
    let classes = shapes.last().map_or(0, |s| s[0]);
    if classes != CLASSES.len() {
        return Err(Error::Arch(format!(
            "the network has {classes} outputs, but CIFAR-10 has {} classes",
            CLASSES.len()
        )));
    }
    Ok(())
}

/// Reads a layer list from JSON text; `name` names the source in errors.
pub fn parse(text: &str, name: &str) -> Result<Vec<LayerSpec>> {
    serde_json::from_str(text).map_err(|e| Error::Arch(format!("{name}: {e}")))
}

/// Reads an architecture file (at most 1 MiB: a layer list is a few hundred bytes).
pub fn read(path: &Path) -> Result<Vec<LayerSpec>> {
    let bytes = crate::data::read_checked(path, 1 << 20).map_err(|e| Error::Arch(e.to_string()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::Arch(format!("{} is not UTF-8 text", path.display())))?;
    parse(text, &path.display().to_string())
}

/// Largest window side, stride or padding a layer may have.
pub const MAX_SIDE: usize = 4096;
/// Most filters or outputs a layer may have.
pub const MAX_WIDTH: usize = 1 << 20;
/// Most elements one example may have at any point of the network (2²⁸ floats: 1 GiB).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// Checks the numbers of every layer before anything is allocated: sizes within bounds, the
/// per-layer rates as the global flags are checked, and no example larger than
/// [`MAX_ELEMENTS`] anywhere. The memory budget then judges the whole.
pub fn check_numbers(spec: &[LayerSpec]) -> Result<()> {
    for (index, layer) in spec.iter().enumerate() {
        let bound = |what: &str, v: usize, max: usize| -> Result<()> {
            if v > max {
                return Err(Error::Arch(format!(
                    "layer {index}: {what} {v} is more than the {max} allowed"
                )));
            }
            Ok(())
        };
        match *layer {
            LayerSpec::Input {
                channels,
                height,
                width,
            } => {
                let volume = channels
                    .checked_mul(height)
                    .and_then(|v| v.checked_mul(width));
                if volume.is_none_or(|v| v > MAX_ELEMENTS) {
                    return Err(Error::Arch(format!(
                        "layer {index} (input): {channels}×{height}×{width} is more than {MAX_ELEMENTS} elements"
                    )));
                }
            }
            LayerSpec::Conv {
                filters,
                size,
                stride,
                pad,
                rates,
            } => {
                bound("filters", filters, MAX_WIDTH)?;
                bound("size", size, MAX_SIDE)?;
                bound("stride", stride, MAX_SIDE)?;
                bound("pad", pad.unsigned_abs() as usize, MAX_SIDE)?;
                rates.check(index, "conv")?;
            }
            LayerSpec::Pool { size, stride } => {
                bound("size", size, MAX_SIDE)?;
                bound("stride", stride, MAX_SIDE)?;
            }
            LayerSpec::Fc { outputs, rates } => {
                bound("outputs", outputs, MAX_WIDTH)?;
                rates.check(index, "fc")?;
            }
            LayerSpec::Relu | LayerSpec::Sigmoid | LayerSpec::Softmax => {}
        }
    }
    Ok(())
}

impl Rates {
    /// Checks the rates that are given, as the global flags are checked.
    fn check(&self, index: usize, layer: &str) -> Result<()> {
        let name = |field: &str| format!("layer {index} ({layer}): {field}");
        check_rates(
            &name("lr"),
            &name("momentum"),
            &name("decay"),
            self.lr.unwrap_or(1.0),
            self.momentum.unwrap_or(0.0),
            self.decay.unwrap_or(0.0),
        )
        .map_err(|e| Error::Arch(e.to_string()))
    }
}

/// What a layer spec turns into once shapes are known: the padding resolved.
pub fn resolved_pad(index: usize, size: usize, stride: usize, pad: i64) -> Result<usize> {
    match pad {
        -1 if stride == 1 && size % 2 == 1 => Ok((size - 1) / 2),
        -1 => Err(Error::Arch(format!(
            "layer {index} (conv): pad -1 (\"same\") needs stride 1 and an odd size, not stride {stride} and size {size}"
        ))),
        p if p >= 0 => Ok(p as usize),
        p => Err(Error::Arch(format!(
            "layer {index} (conv): pad {p} is negative (only -1, \"same\", is allowed)"
        ))),
    }
}
