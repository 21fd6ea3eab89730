//! Tensor files: `model.safetensors` (weights, named as `state_dict()` of the equivalent
//! `torch.nn.Sequential`) and `optimizer.safetensors` (momentum terms, same names; with an
//! average of the weights, also the trained weights, named with the prefix [`TRAINED`]), with what
//! they are from (run, step, input normalisation) in their metadata. Reading checks the file
//! before loading it (a regular file of a size the architecture allows) and every value after
//! (finite, of the right shape).

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, ArrayD, IxDyn};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::error::{Error, Result};
use crate::model::{Network, ParamPair};

/// The `torch.nn.Sequential` index of each layer of `net.layers`: one module per layer, the
/// softmax left out, and a `Flatten` inserted before a `Linear` whose input is `[c, h, w]`.
pub fn torch_indices(net: &Network) -> Vec<usize> {
    let mut next = 0;
    net.layers
        .iter()
        .zip(&net.shapes)
        .map(|(layer, input)| {
            if matches!(layer, crate::model::Layer::Fc { .. }) && input.len() == 3 {
                next += 1;
            }
            next += 1;
            next - 1
        })
        .collect()
}

/// What a tensor file says of itself, in its metadata under one key, `network`, so that the
/// file's bytes are the same every time it is written.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorInfo {
    /// The identity of the run they are from (absent in files of other trainers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The optimiser step the tensors are from.
    pub step: u64,
    /// The input normalisation (model files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalizer: Option<crate::batch::Normalizer>,
}

const INFO_KEY: &str = "network";

/// Room allowed for a tensor file's header beyond its values: a file larger than the values
/// and this is not a checkpoint of the architecture, and is refused before it is read.
const MAX_HEADER: u64 = 1 << 20;
/// Room allowed in the header per tensor: its name, dtype, shape and offsets in JSON.
const HEADER_PER_TENSOR: u64 = 256;

fn to_bytes(values: impl Iterator<Item = f32>) -> Vec<u8> {
    values.flat_map(f32::to_le_bytes).collect()
}

/// One pair per layer, `None` for a layer without parameters.
pub type Pairs = Vec<Option<ParamPair>>;

/// The prefix of the trained weights' names in the optimizer file of a run that evaluates (and
/// saves as its model) an average of its weights.
pub const TRAINED: &str = "trained.";

/// Serialises groups of tensor pairs, one pair per layer with parameters in each group, named
/// `{prefix}{k}.weight` and `{prefix}{k}.bias` after the group's prefix.
pub fn serialize_pairs(
    net: &Network,
    groups: &[(&str, &[Option<ParamPair>])],
    info: &TensorInfo,
) -> Result<Vec<u8>> {
    let metadata = HashMap::from([(
        INFO_KEY.to_string(),
        serde_json::to_string(info).expect("serialisable"),
    )]);
    let indices = torch_indices(net);
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (prefix, pairs) in groups {
        for (k, (w, b)) in indices
            .iter()
            .zip(*pairs)
            .filter_map(|(k, p)| Some((k, p.as_ref()?)))
        {
            blobs.push((
                format!("{prefix}{k}.weight"),
                w.shape().to_vec(),
                to_bytes(w.iter().copied()),
            ));
            blobs.push((
                format!("{prefix}{k}.bias"),
                vec![b.len()],
                to_bytes(b.iter().copied()),
            ));
        }
    }
    let views: Vec<(String, TensorView)> = blobs
        .iter()
        .map(|(name, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).expect("sizes match shapes"),
            )
        })
        .collect();
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Io(format!("serialising tensors: {e}")))
}

/// The tensors of a safetensors file, checked against `net`: every parameter of every layer,
/// f32, of the right shape, nothing else. Returns one pair per layer (None without
/// parameters) and the file's metadata.
pub fn read_pairs(net: &Network, path: &Path) -> Result<(Pairs, Option<TensorInfo>)> {
    let (mut groups, info) = read_groups(net, path, &[""])?;
    Ok((groups.remove(0), info))
}

/// As [`read_pairs`], for a file of one group of pairs per prefix (see [`serialize_pairs`]):
/// every group complete, nothing else.
pub fn read_groups(
    net: &Network,
    path: &Path,
    prefixes: &[&str],
) -> Result<(Vec<Pairs>, Option<TensorInfo>)> {
    let name = path.display();
    let (params, tensors_per_group) = net
        .layers
        .iter()
        .filter_map(|l| l.params())
        .fold((0u64, 0u64), |(n, t), (w, b)| {
            (n + (w.len() + b.len()) as u64, t + 2)
        });
    let groups = prefixes.len() as u64;
    // The header names every tensor: room for each, beyond a fixed allowance.
    let header = MAX_HEADER + HEADER_PER_TENSOR * tensors_per_group * groups;
    let bytes = crate::data::read_checked(path, 4 * params * groups + header)
        .map_err(|e| Error::Checkpoint(e.to_string()))?;
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::Checkpoint(format!("{name} is not a valid safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::Checkpoint(format!("{name}: {e}")))?;
    let info = match header.metadata().as_ref().and_then(|m| m.get(INFO_KEY)) {
        Some(json) => Some(
            serde_json::from_str(json)
                .map_err(|e| Error::Checkpoint(format!("{name}: bad {INFO_KEY} metadata: {e}")))?,
        ),
        None => None,
    };
    let indices = torch_indices(net);
    let mut expected = Vec::new();
    let mut groups = Vec::new();
    for prefix in prefixes {
        let mut pairs = Vec::new();
        for (layer, k) in net.layers.iter().zip(&indices) {
            let Some((w, b)) = layer.params() else {
                pairs.push(None);
                continue;
            };
            let mut read = |suffix: &str, shape: &[usize]| {
                let key = format!("{prefix}{k}.{suffix}");
                expected.push(key.clone());
                read_tensor(&tensors, &name.to_string(), &key, shape, layer.name())
            };
            let w = read("weight", w.shape())?;
            let b = read("bias", &[b.len()])?;
            pairs.push(Some((w, Array1::from_iter(b))));
        }
        groups.push(pairs);
    }
    if let Some(extra) = tensors
        .names()
        .into_iter()
        .find(|n| !expected.iter().any(|e| e == *n))
    {
        return Err(Error::Checkpoint(format!(
            "{name} has a tensor {extra} that the architecture has no place for"
        )));
    }
    Ok((groups, info))
}

/// The tensor `key` of the file `name`, checked: present, f32, of `shape`, finite. `layer`
/// names the layer it belongs to, for the error.
fn read_tensor(
    tensors: &SafeTensors,
    name: &str,
    key: &str,
    shape: &[usize],
    layer: &str,
) -> Result<ArrayD<f32>> {
    let view = tensors.tensor(key).map_err(|_| {
        let why = match key.starts_with(TRAINED) {
            // A run that keeps an average of its weights saves the trained ones beside it.
            true => "the run keeps an average of its weights (--ema) and this file lacks the trained weights".to_string(),
            false => format!("a {layer} layer of shape {shape:?}; it does not match the architecture"),
        };
        Error::Checkpoint(format!("{name} has no tensor {key} ({why})"))
    })?;
    if view.dtype() != Dtype::F32 {
        return Err(Error::Checkpoint(format!(
            "{name}: {key} is {:?}, expected F32",
            view.dtype()
        )));
    }
    if view.shape() != shape {
        return Err(Error::Checkpoint(format!(
            "{name}: {key} has shape {:?}, the architecture expects {shape:?}",
            view.shape()
        )));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::Checkpoint(format!(
            "{name}: {key} holds {} at element {i}: the weights are not finite",
            values[i]
        )));
    }
    Ok(ArrayD::from_shape_vec(IxDyn(shape), values).expect("shape checked"))
}
