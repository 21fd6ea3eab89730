//! Pictures: every command writes a valid PNG of the expected size; the occlusion map is lowest
//! where the evidence is; the responsibility map is the gradient of the class's logit; bad
//! input to `visualize` is a one-line error.

mod common;

use std::path::Path;

use common::*;
use ndarray::{Array3, Axis, s};
use network::arch::{LayerSpec, Rates};
use network::batch::Normalizer;
use network::infer::Model;
use network::model::{Init, Layer, Network, Plan, Workspace};
use network::pictures::{CONFUSION_SIZE, CURVES_SIZE, curves_size, maps_size};
use network::saliency::{occlusion_map, patch_starts, responsibility_map};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Decodes a PNG, checks its size and that it is a picture rather than a blank page.
fn assert_png(path: &Path, size: (u32, u32)) {
    let picture = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    assert_eq!(picture.dimensions(), size, "{}", path.display());
    let mut colours: Vec<[u8; 3]> = picture.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 50,
        "{}: only {} colours",
        path.display(),
        colours.len()
    );
}

fn train_run(data: &str, run: &Path, lr: &str) {
    let (ok, stdout, stderr) = run_cli(&[
        "--data",
        data,
        "--out",
        run.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "20",
        "--lr",
        lr,
        "--technique",
        "im2col",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
}

#[test]
fn every_command_draws_a_png_of_the_expected_size() {
    let data = cifar_dir("pictures-data", 200, 100);
    let d = data.to_str().unwrap();
    let (a, b) = (temp_dir("pictures-a"), temp_dir("pictures-b"));
    train_run(d, &a, "0.02");
    train_run(d, &b, "0.005");
    assert_png(&a.join("curves.png"), CURVES_SIZE);

    let compare = a.join("compare.png");
    let (ok, stdout, stderr) = run_cli(&[
        "plot",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        compare.to_str().unwrap(),
    ]);
    assert!(ok && stdout.contains("2 run(s)"), "{stdout}\n{stderr}");
    // Several runs: the chart as wide as one run's, their key to its right, its first row the
    // first run's colour (a swatch 30 pixels long, 16 in, 40 below the 50 of the title).
    let (width, height) = image::image_dimensions(&compare).unwrap();
    assert!(
        height == CURVES_SIZE.1 && width > CURVES_SIZE.0 + 200,
        "{width}×{height}"
    );
    assert_png(&compare, (width, height));
    let key = image::open(&compare).unwrap().to_rgb8();
    for x in [CURVES_SIZE.0 + 20, CURVES_SIZE.0 + 40] {
        assert_eq!(
            key.get_pixel(x, 90).0,
            [31, 119, 180],
            "the key's first swatch at x {x}"
        );
    }

    let r = a.to_str().unwrap();
    let (ok, stdout, stderr) = run_cli(&["eval", "--model", r, "--data", d]);
    assert!(ok && stderr.contains("confusion.png"), "{stdout}\n{stderr}");
    assert_png(&a.join("confusion.png"), CONFUSION_SIZE);

    let own = a.join("own.png");
    let pixels = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 8) as u8, 90])
    });
    pixels.save(&own).unwrap();
    let (ok, stdout, stderr) = run_cli(&[
        "visualize",
        "--model",
        r,
        "--data",
        d,
        "--index",
        "0",
        "7",
        "--image",
        own.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("predicted"), "{stdout}");
    for name in ["test-0.png", "test-7.png", "own.png"] {
        assert_png(&a.join("maps").join(name), maps_size(32, 32, 2));
    }
    for dir in [data, a, b] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn bad_visualize_input_is_a_one_line_error() {
    let data = cifar_dir("pictures-bad-data", 100, 20);
    let d = data.to_str().unwrap();
    let run = temp_dir("pictures-bad-run");
    train_run(d, &run, "0.02");
    let r = run.to_str().unwrap();
    let visualize = |extra: &[&str]| {
        let mut args = vec!["visualize", "--model", r, "--data", d];
        args.extend_from_slice(extra);
        run_cli(&args)
    };
    assert_one_line_error(&visualize(&["--index", "20"]), "--index 20 is past the 20");
    assert_one_line_error(&visualize(&[]), "--index N");
    assert_one_line_error(&visualize(&["--index", "0", "--patch", "0"]), "--patch");
    assert_one_line_error(&visualize(&["--index", "0", "--patch", "40"]), "--patch");
    assert_one_line_error(
        &visualize(&["--index", "0", "--patch", "4", "--stride", "5"]),
        "--stride",
    );
    let big = run.join("big.png");
    image::RgbImage::new(64, 48).save(&big).unwrap();
    assert_one_line_error(
        &visualize(&["--image", big.to_str().unwrap()]),
        "is 64×48 pixels",
    );
    let text = run.join("notes.png");
    std::fs::write(&text, "not a picture").unwrap();
    assert_one_line_error(
        &visualize(&["--image", text.to_str().unwrap()]),
        "cannot read the image",
    );
    let own = run.join("own.png");
    image::RgbImage::new(32, 32).save(&own).unwrap();
    assert_one_line_error(
        &visualize(&["--image", own.to_str().unwrap(), "--class", "unicorn"]),
        "unicorn is not a CIFAR-10 class",
    );
    assert_one_line_error(
        &run_cli(&["visualize", "--model", "/nonexistent/run", "--index", "0"]),
        "/nonexistent/run",
    );
    assert_one_line_error(&run_cli(&["plot", "/nonexistent/run"]), "/nonexistent/run");
    for dir in [data, run] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn model(spec: &[LayerSpec], technique: &str, seed: u64) -> Model {
    let net = Network::new(spec, Init::He, &mut StdRng::seed_from_u64(seed)).unwrap();
    let identity = Normalizer {
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    Model::new(net, identity, 2, technique.parse().unwrap()).unwrap()
}

fn input(c: usize, side: usize) -> LayerSpec {
    LayerSpec::Input {
        channels: c,
        height: side,
        width: side,
    }
}

#[test]
fn patches_cover_every_pixel() {
    assert_eq!(patch_starts(32, 8, 2).unwrap().len(), 13);
    assert_eq!(
        patch_starts(32, 8, 3).unwrap(),
        [0, 3, 6, 9, 12, 15, 18, 21, 24]
    );
    assert_eq!(patch_starts(10, 10, 1).unwrap(), [0]);
}

/// A linear classifier whose class 0 sees only a bright 8 × 8 square: hiding that square, and
/// nothing else, lowers the probability of class 0.
#[test]
fn occlusion_is_lowest_where_the_evidence_is() {
    let spec = [
        input(3, 32),
        LayerSpec::Fc {
            outputs: 10,
            rates: Rates::default(),
        },
        LayerSpec::Softmax,
    ];
    let mut model = model(&spec, "im2col", 1);
    let evidence = (20..28, 4..12);
    if let Layer::Fc { w, b, .. } = &mut model.net.layers[0] {
        w.fill(0.0);
        b.fill(0.0);
        let mut class0 = w.row_mut(0).into_shape_with_order((3, 32, 32)).unwrap();
        class0
            .slice_mut(s![0, evidence.0.clone(), evidence.1.clone()])
            .fill(0.05);
    }
    let image = Array3::<f32>::ones((3, 32, 32));
    let map = occlusion_map(&mut model, image.view(), 0, 8, 2).unwrap();
    let (argmin, _) = map
        .indexed_iter()
        .fold(((0, 0), f32::INFINITY), |best, (i, &v)| {
            if v < best.1 { (i, v) } else { best }
        });
    assert!(
        evidence.0.contains(&argmin.0) && evidence.1.contains(&argmin.1),
        "lowest at {argmin:?}"
    );
    let untouched = model
        .probabilities_of(image.view().insert_axis(Axis(0)))
        .unwrap()[[0, 0]];
    // Far from the square no patch touches the evidence: the probability is the image's own.
    assert!((map[[0, 31]] - untouched).abs() < 1e-6);
    assert!(
        map[[24, 8]] < untouched - 0.3,
        "{} vs {untouched}",
        map[[24, 8]]
    );
}

/// The responsibility map is |∂ logit / ∂ input| summed over channels, normalised: checked
/// against central differences of the logit on a small network, with every technique's
/// backward kernels.
#[test]
fn responsibility_is_the_finite_difference_gradient_of_the_logit() {
    let spec = [
        input(3, 8),
        LayerSpec::Conv {
            filters: 4,
            size: 3,
            stride: 1,
            pad: -1,
            rates: Rates::default(),
        },
        LayerSpec::Relu,
        LayerSpec::Pool { size: 2, stride: 2 },
        LayerSpec::Fc {
            outputs: 10,
            rates: Rates::default(),
        },
        LayerSpec::Softmax,
    ];
    let mut rng = StdRng::seed_from_u64(5);
    let image = Array3::from_shape_simple_fn((3, 8, 8), || rng.random_range(-1.0f32..1.0));
    let class = 3;
    for technique in ["naive", "per-output", "axis-reduce", "im2col"] {
        let mut model = model(&spec, technique, 2);
        let gradient = model.logit_gradient(image.view(), class).unwrap();
        let mut ws = Workspace::new(&model.net, 1);
        let plan = Plan::uniform(&model.net, technique.parse().unwrap());
        let mut logit = |x: &Array3<f32>| {
            ws.input_mut(1).index_axis_mut(Axis(0), 0).assign(x);
            ws.forward(&model.net, &plan, 1).unwrap();
            f64::from(ws.logits(1)[[0, class]])
        };
        let h = 1e-3f32;
        let mut numeric = Array3::<f64>::zeros((3, 8, 8));
        for (i, g) in numeric.indexed_iter_mut() {
            let (mut up, mut down) = (image.clone(), image.clone());
            up[i] += h;
            down[i] -= h;
            *g = (logit(&up) - logit(&down)) / (2.0 * f64::from(h));
        }
        let largest = gradient.fold(0.0f32, |m, &v| m.max(v.abs()));
        assert!(largest > 0.0);
        for (i, (&g, &n)) in gradient.iter().zip(&numeric).enumerate() {
            assert!(
                (f64::from(g) - n).abs() <= 1e-3 * f64::from(largest) + 1e-4,
                "{technique}: element {i}: backward {g}, central difference {n}"
            );
        }
        let map = responsibility_map(&mut model, image.view(), class).unwrap();
        let expected = numeric.mapv(f64::abs).sum_axis(Axis(0));
        let top = expected.fold(0.0f64, |m, &v| m.max(v));
        for (&m, &e) in map.iter().zip(&expected) {
            assert!(
                (f64::from(m) - e / top).abs() < 2e-3,
                "{technique}: {m} vs {}",
                e / top
            );
        }
    }
}

#[test]
fn the_key_of_several_runs_is_as_wide_as_their_longest_name() {
    assert_eq!(curves_size(&["one run"]), CURVES_SIZE);
    let short = curves_size(&["a", "b"]);
    let long = curves_size(&["a", &"a much longer name of a run ".repeat(4)]);
    assert_eq!((short.1, long.1), (CURVES_SIZE.1, CURVES_SIZE.1));
    assert!(
        CURVES_SIZE.0 < short.0 && short.0 < long.0,
        "{short:?} {long:?}"
    );
    // As many runs as the key's rows outgrow the chart's height: the picture grows taller.
    let many: Vec<String> = (0..40).map(|i| format!("run {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(curves_size(&many).1 > CURVES_SIZE.1 + 24 * 10);
}
