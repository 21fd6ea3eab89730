//! What the network looks at: the occlusion map of Zeiler & Fergus and the seed's
//! "responsibility" map, both for one normalised image `[c, h, w]` and one class.

use std::path::Path;

use ndarray::{Array2, Array4, ArrayView3, Axis, s};

use crate::data::class_name;
use crate::error::{Error, Result};
use crate::infer::Model;
use crate::pictures::{Map, maps_png as draw_png};

/// Where a `patch`-wide window starts along a `side`-long axis, every `stride`, the last flush
/// with the far edge so that every pixel is covered.
pub fn patch_starts(side: usize, patch: usize, stride: usize) -> Result<Vec<usize>> {
    if patch == 0 || patch > side {
        return Err(Error::Usage(format!(
            "--patch must be between 1 and the image side {side}, not {patch}"
        )));
    }
    if stride == 0 || stride > patch {
        return Err(Error::Usage(format!(
            "--stride must be between 1 and --patch {patch} (larger strides leave pixels never covered), not {stride}"
        )));
    }
    let mut starts: Vec<usize> = (0..=side - patch).step_by(stride).collect();
    if starts.last() != Some(&(side - patch)) {
        starts.push(side - patch);
    }
    Ok(starts)
}

/// The occlusion map `[h, w]`: a `patch × patch` square filled with the dataset mean (zero
/// after normalisation) is slid over `input` every `stride` pixels, and the probability of
/// `class` recorded at each position; each pixel gets the mean over the positions whose patch
/// covers it. Low values mark where the evidence for `class` sits. All the patched copies go
/// through the forward pass as batches.
pub fn occlusion_map(
    model: &mut Model,
    input: ArrayView3<f32>,
    class: usize,
    patch: usize,
    stride: usize,
) -> Result<Array2<f32>> {
    let (c, h, w) = input.dim();
    let rows = patch_starts(h, patch, stride)?;
    let cols = patch_starts(w, patch, stride)?;
    let mut copies = Array4::zeros((rows.len() * cols.len(), c, h, w));
    let positions: Vec<(usize, usize)> = rows
        .iter()
        .flat_map(|&r| cols.iter().map(move |&q| (r, q)))
        .collect();
    for (mut copy, &(r, q)) in copies.axis_iter_mut(Axis(0)).zip(&positions) {
        copy.assign(&input);
        copy.slice_mut(s![.., r..r + patch, q..q + patch]).fill(0.0);
    }
    let probs = model.probabilities_of(copies.view())?;
    let mut sum = Array2::<f32>::zeros((h, w));
    let mut count = Array2::<f32>::zeros((h, w));
    for (k, &(r, q)) in positions.iter().enumerate() {
        sum.slice_mut(s![r..r + patch, q..q + patch])
            .mapv_inplace(|v| v + probs[[k, class]]);
        count
            .slice_mut(s![r..r + patch, q..q + patch])
            .mapv_inplace(|v| v + 1.0);
    }
    Ok(sum / count)
}

/// The responsibility map `[h, w]`: the score (logit) of `class` sent back to the input by the
/// backward kernels, its absolute value summed over channels, divided by its largest value.
pub fn responsibility_map(
    model: &mut Model,
    input: ArrayView3<f32>,
    class: usize,
) -> Result<Array2<f32>> {
    let gradient = model.logit_gradient(input, class)?;
    let map = gradient.mapv(f32::abs).sum_axis(Axis(0));
    let largest = map.fold(0.0f32, |m, &v| m.max(v));
    Ok(if largest > 0.0 { map / largest } else { map })
}

/// One image to map: its bytes `[3, h, w]`, the same normalised `[3, h, w]`, the class whose
/// evidence is mapped, and the occlusion's patch side and stride.
pub struct Look<'a> {
    /// The image's bytes `[3, h, w]`.
    pub bytes: ArrayView3<'a, u8>,
    /// The image normalised, `[3, h, w]`.
    pub input: ArrayView3<'a, f32>,
    /// The class mapped.
    pub class: usize,
    /// Side of the occluding square.
    pub patch: usize,
    /// Step between its positions.
    pub stride: usize,
}

/// The image beside its occlusion map (low probability with the patch in place marks
/// evidence, drawn hot) and its responsibility map, as PNG bytes under `title`; `name` names
/// the picture in errors.
pub fn maps_png(model: &mut Model, look: &Look, title: &str, name: &Path) -> Result<Vec<u8>> {
    let class = class_name(look.class);
    let occlusion = occlusion_map(model, look.input, look.class, look.patch, look.stride)?;
    let responsibility = responsibility_map(model, look.input, look.class)?;
    let (low, high) = occlusion.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
        (l.min(v), h.max(v))
    });
    let heat = occlusion.mapv(|p| {
        if high > low {
            (high - p) / (high - low)
        } else {
            0.0
        }
    });
    let maps = [
        Map {
            heat: heat.view(),
            caption: format!(
                "occlusion: p({class}) with a {0}×{0} mean-colour patch here",
                look.patch
            ),
            ends: (format!("p = {high:.2}"), format!("p = {low:.2}")),
        },
        Map {
            heat: responsibility.view(),
            caption: format!("responsibility: |∂ score({class}) / ∂ pixel|"),
            ends: ("0".into(), "max".into()),
        },
    ];
    draw_png(name, look.bytes, title, &maps)
}

/// What a picture's title says of an image: its true class (or that the maps show the
/// predicted `target`) and the top three predictions of `ranked`.
pub fn verdict(truth: Option<usize>, target: usize, ranked: &[(usize, f32)]) -> String {
    let top3 = ranked
        .iter()
        .take(3)
        .map(|&(c, p)| format!("{} {:.1}%", class_name(c), 100.0 * p))
        .collect::<Vec<_>>()
        .join(", ");
    let what = match truth {
        Some(t) => format!("true class {}", class_name(t)),
        None => format!("maps of the predicted class {}", class_name(target)),
    };
    format!("{what} · predicted: {top3}")
}
