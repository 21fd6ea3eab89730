//! Checkpoints: `model.safetensors` (weights, named as `state_dict()` of the equivalent
//! `torch.nn.Sequential`), `optimizer.safetensors` (momentum terms, same names) and
//! `state.json`. Every file is written to a temporary file and renamed over the old one, so a
//! crash or a full disk mid-save leaves the previous checkpoint whole.

use std::collections::HashMap;
use std::io::Write;
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
    /// The optimiser step the tensors are from.
    pub step: u64,
    /// The input normalisation (model files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalizer: Option<crate::batch::Normalizer>,
}

const INFO_KEY: &str = "network";

fn to_bytes(values: impl Iterator<Item = f32>) -> Vec<u8> {
    values.flat_map(f32::to_le_bytes).collect()
}

/// Serialises one tensor pair per layer with parameters (`{k}.weight`, `{k}.bias`).
pub fn serialize_pairs(
    net: &Network,
    pairs: impl Iterator<Item = Option<ParamPair>>,
    info: &TensorInfo,
) -> Result<Vec<u8>> {
    let metadata = HashMap::from([(
        INFO_KEY.to_string(),
        serde_json::to_string(info).expect("serialisable"),
    )]);
    let indices = torch_indices(net);
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (k, pair) in indices.iter().zip(pairs) {
        if let Some((w, b)) = pair {
            blobs.push((
                format!("{k}.weight"),
                w.shape().to_vec(),
                to_bytes(w.iter().copied()),
            ));
            blobs.push((
                format!("{k}.bias"),
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
pub fn read_pairs(
    net: &Network,
    path: &Path,
) -> Result<(Vec<Option<ParamPair>>, Option<TensorInfo>)> {
    let name = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| Error::Checkpoint(format!("cannot read {name}: {e}")))?;
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
    let mut pairs = Vec::new();
    for (layer, k) in net.layers.iter().zip(&indices) {
        let Some((w, b)) = layer.params() else {
            pairs.push(None);
            continue;
        };
        let mut read = |suffix: &str, shape: &[usize]| -> Result<ArrayD<f32>> {
            let key = format!("{k}.{suffix}");
            expected.push(key.clone());
            let view = tensors.tensor(&key).map_err(|_| {
                Error::Checkpoint(format!("{name} has no tensor {key} (a {} layer of shape {shape:?}); it does not match the architecture", layer.name()))
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
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(ArrayD::from_shape_vec(IxDyn(shape), values).expect("shape checked"))
        };
        let w = read("weight", w.shape())?;
        let b = read("bias", &[b.len()])?;
        pairs.push(Some((w, Array1::from_iter(b))));
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
    Ok((pairs, info))
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced, then
/// renamed: the old file stays whole until the new one is complete.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io(format!(
            "cannot write {}: {e} (the previous file, if any, is unchanged)",
            path.display()
        ))
    })
}
