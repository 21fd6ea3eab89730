//! No panic is reachable from input: every parser gets random and mutated bytes — layer lists,
//! `state.json`, the checkpoint pointer, safetensors files, CIFAR-10 files, images — and must
//! answer with a value or an error, never a panic or an abort.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::*;
use network::arch::{self, LayerSpec, Rates};
use network::budget::Footprint;
use network::data::{Cifar10, Dataset, decode_image};
use network::events::Quiet;
use network::model::{Init, Network};
use network::run::{NewRun, Run, RunOptions};
use network::store::{Checkpoint, Place};
use network::tensors::read_pairs;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Flips, sets, drops and duplicates bytes of `base` at the positions `edits` name.
fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for &(at, what, value) in edits {
        if bytes.is_empty() {
            bytes.push(value);
            continue;
        }
        let i = at % bytes.len();
        match what % 4 {
            0 => bytes[i] ^= value | 1,
            1 => bytes[i] = value,
            2 => {
                bytes.remove(i);
            }
            _ => bytes.insert(i, value),
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
}

/// Numbers that hit every bound: small, at the limits, huge.
fn number() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..8,
        1usize..64,
        Just(4096),
        Just(4097),
        Just(1 << 20),
        Just(usize::MAX / 3),
        any::<usize>()
    ]
}

fn layer() -> impl Strategy<Value = LayerSpec> {
    let rate = prop::option::of(prop_oneof![
        Just(f32::NAN),
        Just(-1.0f32),
        Just(0.0f32),
        0.001f32..2.0
    ]);
    prop_oneof![
        (number(), number(), number()).prop_map(|(channels, height, width)| LayerSpec::Input {
            channels,
            height,
            width
        }),
        (number(), number(), number(), -3i64..9, rate.clone()).prop_map(
            |(filters, size, stride, pad, lr)| LayerSpec::Conv {
                filters,
                size,
                stride,
                pad,
                rates: Rates {
                    lr,
                    ..Rates::default()
                },
            }
        ),
        (number(), number()).prop_map(|(size, stride)| LayerSpec::Pool { size, stride }),
        (number(), rate).prop_map(|(outputs, momentum)| LayerSpec::Fc {
            outputs,
            rates: Rates {
                momentum,
                ..Rates::default()
            },
        }),
        Just(LayerSpec::Relu),
        Just(LayerSpec::Sigmoid),
        Just(LayerSpec::Softmax),
    ]
}

/// Builds the network only when its footprint is small: what the trainer does before it
/// allocates.
fn check_and_build(spec: &[LayerSpec]) {
    if Network::shapes(spec).is_err() {
        return;
    }
    let Ok(footprint) = Footprint::estimate(spec, 1, 4, 0, false) else {
        return;
    };
    if footprint.check(64 << 20, "").is_ok() {
        let net = Network::new(spec, Init::He, &mut StdRng::seed_from_u64(0)).unwrap();
        assert_eq!(net.shapes.len(), net.layers.len() + 1);
    }
}

const SEED_JSON: &str = r#"[{"type":"input","channels":3,"height":32,"width":32},{"type":"conv","filters":16,"size":5,"stride":1,"pad":2,"lr":0.01},{"type":"relu"},{"type":"pool","size":2,"stride":2},{"type":"conv","filters":20,"size":5,"pad":-1},{"type":"sigmoid"},{"type":"pool","size":2,"stride":2},{"type":"fc","outputs":10,"momentum":0.5},{"type":"softmax"}]"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Layer lists of any numbers: checked without a panic, an overflow or a huge allocation.
    #[test]
    fn any_layer_list_is_checked_without_panic(mut spec in prop::collection::vec(layer(), 0..8), input in layer()) {
        if matches!(input, LayerSpec::Input { .. }) {
            spec.insert(0, input);
        }
        spec.push(LayerSpec::Softmax);
        check_and_build(&spec);
    }

    /// Mutated architecture JSON: an error or a network.
    #[test]
    fn mutated_architecture_json_is_an_error_or_a_network(e in edits()) {
        let text = String::from_utf8_lossy(&mutate(SEED_JSON.as_bytes(), &e)).into_owned();
        if let Ok(spec) = arch::parse(&text, "arch.json") {
            check_and_build(&spec);
        }
    }

    /// Mutated CIFAR-10 records: an error or a data set whose labels are classes.
    #[test]
    fn mutated_cifar_records_are_an_error_or_data(e in edits(), records in 0usize..3) {
        let sample = Cifar10::sample().train.truncated(records);
        let bytes = mutate(&records_of(&sample), &e);
        if let Ok(data) = Dataset::parse(&bytes, "data_batch_1.bin") {
            prop_assert!(data.labels.iter().all(|&l| l < 10));
        }
    }

    /// Mutated PNG files: an error or a 32×32 image.
    #[test]
    fn mutated_images_are_an_error_or_an_image(e in edits()) {
        let bytes = mutate(&png(), &e);
        if let Ok(image) = decode_image(&bytes, "own.png") {
            prop_assert_eq!(image.shape(), &[3, 32, 32]);
        }
    }
}

fn records_of(data: &Dataset) -> Vec<u8> {
    records(data)
}

/// A 32×32 PNG.
fn png() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 8) as u8, 90])
    });
    let mut bytes = Vec::new();
    picture
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageOutputFormat::Png,
        )
        .unwrap();
    bytes
}

/// A small finished run to mutate: its directory.
fn small_run(name: &str) -> std::path::PathBuf {
    let data = cifar_dir(&format!("{name}-data"), 32, 16);
    let dir = temp_dir(name);
    let new = NewRun {
        arch: arch::seed_network(),
        config: network::config::TrainConfig {
            epochs: 1,
            batch_size: 16,
            threads: 1,
            technique: "direct".parse().unwrap(),
            ..Default::default()
        },
        ..NewRun::default()
    };
    let mut run = Run::create(
        &Place::Dir(dir.clone()),
        Cifar10::load_dir(&data).unwrap(),
        new,
        &RunOptions::default(),
    )
    .unwrap();
    run.fit(None, &AtomicBool::new(false), &mut Quiet).unwrap();
    dir
}

/// Runs `check` on a copy of `file` mutated by many random edits, restoring it after each.
fn each_mutation(file: &Path, cases: u32, check: impl Fn()) {
    let original = bytes(file);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&edits(), |e| {
            std::fs::write(file, mutate(&original, &e)).unwrap();
            check();
            Ok(())
        })
        .unwrap();
    std::fs::write(file, original).unwrap();
}

/// Mutated `state.json`, `latest` and tensor files of a real run: loading and resuming give an
/// error or a run, never a panic.
#[test]
fn mutated_run_files_are_an_error_or_a_run() {
    let dir = small_run("parsers-run");
    let checkpoint = Checkpoint::latest(&dir).unwrap();
    let generation = checkpoint.model.parent().unwrap().to_path_buf();
    let net = Network::new(
        &checkpoint.state.settings.arch,
        Init::He,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap();
    let load = || {
        let _ = network::infer::Model::load(&dir, None, 1);
        let _ = Run::resume(&dir, None, &RunOptions::default());
    };
    each_mutation(&generation.join("state.json"), 60, load);
    each_mutation(&dir.join("latest"), 20, load);
    each_mutation(&dir.join("steps.jsonl"), 10, load);
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let path = generation.join(file);
        each_mutation(&path, 40, || {
            let _ = read_pairs(&net, &path);
            load();
        });
    }
    let _ = std::fs::remove_dir_all(dir);
}
