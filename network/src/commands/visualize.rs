//! `network visualize`: for each image, its occlusion map and its responsibility map, or with
//! `--layers` every layer's activations, gradients and filters.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::data::{CHANNELS, CLASSES, SIDE};
use crate::error::{Error, Result};
use crate::infer::Model;
use crate::saliency::{Look, maps_png, verdict};

use super::{check_output, model_data, model_dir, model_exists, model_inputs, note_data};

/// What `visualize` draws maps of.
pub struct VisualizeArgs {
    /// A run directory or a model file.
    pub model: PathBuf,
    /// The architecture of a bare model file.
    pub arch: Option<PathBuf>,
    /// `--data`, for `indices`.
    pub data: Option<PathBuf>,
    /// Test-set images.
    pub indices: Vec<usize>,
    /// The user's own 32×32 PNG images.
    pub images: Vec<PathBuf>,
    /// For `images`: the class whose evidence is mapped (default: the predicted one).
    pub class: Option<String>,
    /// Side of the occluding square.
    pub patch: usize,
    /// Step between occluding squares.
    pub stride: usize,
    /// Output directory (default: `maps/` beside the model).
    pub out: Option<PathBuf>,
    /// Draw every layer (`<stem>-layers.png`) instead of the maps (`<stem>.png`).
    pub layers: bool,
    /// Worker threads (default: every core).
    pub threads: Option<usize>,
}

/// One image to map: its bytes `[3, 32, 32]`, its true class if known, a name for the title
/// and a file stem.
struct Subject {
    bytes: ndarray::Array3<u8>,
    truth: Option<usize>,
    name: String,
    stem: String,
}

/// For each image, a PNG with the image, its occlusion map and its responsibility map; returns
/// the files written.
pub fn visualize(args: &VisualizeArgs) -> Result<Vec<PathBuf>> {
    if args.indices.is_empty() && args.images.is_empty() {
        return Err(Error::Usage(
            "give test images with --index N or your own with --image FILE.png".into(),
        ));
    }
    let class = match &args.class {
        None => None,
        Some(name) => Some(CLASSES.iter().position(|c| c == name).ok_or_else(|| {
            Error::Usage(format!(
                "--class {name} is not a CIFAR-10 class ({})",
                CLASSES.join(", ")
            ))
        })?),
    };
    crate::saliency::patch_starts(SIDE, args.patch, args.stride)?;
    model_exists(&args.model)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| model_dir(&args.model).join("maps"));
    let subjects_named = names(args);
    check_outputs(args, &out, &subjects_named)?;
    let threads = args.threads.unwrap_or_else(crate::config::cores);
    let mut model = Model::load(&args.model, args.arch.as_deref(), threads)?;
    let subjects = subjects(args, class)?;
    std::fs::create_dir_all(&out)
        .map_err(|e| Error::Io(format!("--out {}: cannot create it: {e}", out.display())))?;
    let mut written = Vec::new();
    for subject in subjects {
        let path = out.join(file_name(&subject.stem, args.layers));
        let seen = Seen::of(&mut model, &subject)?;
        if args.layers {
            let trace = model.trace(seen.input.view(), seen.target)?;
            let png = crate::layers_view::layers_png(
                &path,
                &model.net,
                &trace,
                &seen.title,
                CLASSES[seen.target],
            )?;
            crate::disk::write_atomic(&path, &png)?;
            println!("{} → {}", seen.title, path.display());
        } else {
            draw(&mut model, &subject, &seen, args, &path)?;
        }
        written.push(path);
    }
    Ok(written)
}

/// The picture of the subject with file stem `stem`.
fn file_name(stem: &str, layers: bool) -> String {
    if layers {
        format!("{stem}-layers.png")
    } else {
        format!("{stem}.png")
    }
}

/// The file stem of each picture, in order: `test-N`, then each image's own stem.
fn names(args: &VisualizeArgs) -> Vec<String> {
    let mut stems: Vec<String> = args.indices.iter().map(|i| format!("test-{i}")).collect();
    for path in &args.images {
        stems.push(
            path.file_stem()
                .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned()),
        );
    }
    stems
}

/// No two pictures to one file, and no picture over an input.
fn check_outputs(args: &VisualizeArgs, out: &Path, stems: &[String]) -> Result<()> {
    let mut seen = HashSet::new();
    for stem in stems {
        if !seen.insert(stem) {
            return Err(Error::Usage(format!(
                "two pictures would be written to {}: give each --index once, and --image files with different names",
                out.join(file_name(stem, args.layers)).display()
            )));
        }
    }
    let mut inputs = model_inputs(&args.model);
    inputs.extend(args.images.iter().cloned());
    inputs.extend(args.arch.iter().cloned());
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    if out.exists() && !out.is_dir() {
        return Err(Error::Usage(format!(
            "--out {} is not a directory",
            out.display()
        )));
    }
    if out.is_dir() {
        for stem in stems {
            check_output("--out", &out.join(file_name(stem, args.layers)), &inputs)?;
        }
    } else if crate::store::is_run_file(out) {
        return Err(Error::Usage(format!(
            "--out {} is a file of a run directory, which only the run writes",
            out.display()
        )));
    }
    Ok(())
}

/// The images to map: test images by index, then the user's files.
fn subjects(args: &VisualizeArgs, class: Option<usize>) -> Result<Vec<Subject>> {
    let mut subjects = Vec::new();
    if !args.indices.is_empty() {
        let data = model_data(&args.model, args.data.clone())?;
        for &i in &args.indices {
            if i >= data.test.len() {
                return Err(Error::Usage(format!(
                    "--index {i} is past the {} test images",
                    data.test.len()
                )));
            }
            let bytes = ndarray::Array3::from_shape_vec(
                (CHANNELS, SIDE, SIDE),
                data.test.image(i).to_vec(),
            )
            .expect("an image is 3×32×32 bytes");
            subjects.push(Subject {
                bytes,
                truth: Some(usize::from(data.test.labels[i])),
                name: format!("test image {i}"),
                stem: format!("test-{i}"),
            });
        }
        note_data(&data, 0, None);
    }
    for path in &args.images {
        subjects.push(read_image(path, class)?);
    }
    Ok(subjects)
}

/// The user's own 32×32 image.
fn read_image(path: &Path, class: Option<usize>) -> Result<Subject> {
    Ok(Subject {
        bytes: crate::data::read_image(path)?,
        truth: class,
        name: path.display().to_string(),
        stem: path
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned()),
    })
}

/// What the network makes of a subject: its normalised input, the class mapped (the true one
/// if known, else the predicted one) and a title with the top three predictions.
struct Seen {
    input: ndarray::Array3<f32>,
    target: usize,
    title: String,
}

impl Seen {
    fn of(model: &mut Model, subject: &Subject) -> Result<Seen> {
        let input = model.input_of(subject.bytes.view());
        let ranked = model.ranked(input.view())?;
        let target = subject.truth.unwrap_or(ranked[0].0);
        let title = format!(
            "{}, {}",
            subject.name,
            verdict(subject.truth, target, &ranked)
        );
        Ok(Seen {
            input,
            target,
            title,
        })
    }
}

/// One subject's picture: the image, its occlusion map and its responsibility map.
fn draw(
    model: &mut Model,
    subject: &Subject,
    seen: &Seen,
    args: &VisualizeArgs,
    path: &Path,
) -> Result<()> {
    let look = Look {
        bytes: subject.bytes.view(),
        input: seen.input.view(),
        class: seen.target,
        patch: args.patch,
        stride: args.stride,
    };
    let png = maps_png(model, &look, &seen.title, path)?;
    crate::disk::write_atomic(path, &png)?;
    println!("{} → {}", seen.title, path.display());
    Ok(())
}
