//! What the page shows of one image: a test image as a PNG, and for a test image or an upload
//! its top predictions, its occlusion and responsibility maps and every layer, computed on the
//! analyst's copy of the run's newest checkpoint.

use std::path::Path;

use base64::Engine;
use ndarray::{Array3, ArrayView3};
use serde_json::{Value, json};

use crate::data::{CHANNELS, SIDE, class_name};
use crate::error::{Error, Result};
use crate::layers_view::{filters_png, layers_png};
use crate::pictures::encode_png;
use crate::saliency::{Look, maps_png, verdict};

use super::hub::Watched;

/// Side of the occluding square in the page's maps (the CLI's default).
const PATCH: usize = 8;
/// Its stride (the CLI's default).
const STRIDE: usize = 2;

/// Why the page cannot show something yet: no checkpoint has been loaded.
pub(crate) const NO_MODEL: &str = "the run's first checkpoint is not loaded yet";

/// An image's bytes `[3, h, w]` as a PNG.
pub(crate) fn image_png(bytes: ArrayView3<u8>) -> Result<Vec<u8>> {
    let (_, h, w) = bytes.dim();
    let rgb: Vec<u8> = bytes.permuted_axes([1, 2, 0]).iter().copied().collect();
    encode_png(Path::new("image.png"), (w as u32, h as u32), &rgb)
}

/// Test image `i` of `run` as bytes `[3, 32, 32]`, if there is one.
pub(crate) fn test_image(run: &Watched, i: usize) -> Option<Array3<u8>> {
    let test = run.test.as_ref().filter(|t| i < t.len())?;
    Array3::from_shape_vec((CHANNELS, SIDE, SIDE), test.image(i).to_vec()).ok()
}

/// The first convolution's filters of the loaded model, as a PNG.
pub(crate) fn filters(run: &Watched) -> Result<Vec<u8>> {
    let model = run.model();
    let model = model
        .as_ref()
        .ok_or_else(|| Error::Usage(NO_MODEL.into()))?;
    filters_png(Path::new("filters.png"), &model.net)
}

/// An image (`bytes` `[3, 32, 32]`, its true class if known) as the page shows it when
/// clicked or dropped: the top three predictions, and the image, its maps and its layers as
/// PNG data URLs, with the step of the checkpoint that made them.
pub(crate) fn inspect(run: &Watched, bytes: ArrayView3<u8>, truth: Option<usize>) -> Result<Value> {
    let step = run.model_step();
    let mut model = run.model();
    let model = model
        .as_mut()
        .ok_or_else(|| Error::Usage(NO_MODEL.into()))?;
    let input = model.input_of(bytes);
    let ranked = model.ranked(input.view())?;
    let target = truth.unwrap_or(ranked[0].0);
    let title = verdict(truth, target, &ranked);
    let look = Look {
        bytes,
        input: input.view(),
        class: target,
        patch: PATCH,
        stride: STRIDE,
    };
    let maps = maps_png(model, &look, &title, Path::new("maps.png"))?;
    let trace = model.trace(input.view(), target)?;
    let layers = layers_png(
        Path::new("layers.png"),
        &model.net,
        &trace,
        &title,
        class_name(target),
    )?;
    let top: Vec<Value> = (ranked.iter().take(3))
        .map(|&(c, p)| json!({ "class": c, "name": class_name(c), "p": p }))
        .collect();
    Ok(json!({
        "step": step,
        "truth": truth,
        "target": target,
        "top": top,
        "image": data_url(&image_png(bytes)?),
        "maps": data_url(&maps),
        "layers": data_url(&layers),
    }))
}

/// A PNG as a `data:` URL.
fn data_url(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}
