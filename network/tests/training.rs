//! Training works: the loss falls on the sample, checkpoints round-trip bit-exactly, a resumed
//! run equals the uninterrupted one, and the run directory holds what it should.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use common::*;
use network::arch::seed_network;
use network::batch::{Normalizer, draw_augments, epoch_order};
use network::commands::{DataArgs, TrainArgs, train};
use network::data::Cifar10;
use network::model::{Init, Network};
use network::optim::Schedule;
use network::train::{TrainConfig, Trainer};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn config(threads: usize) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 16,
        lr: 0.02,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: Schedule::Cosine,
        seed: 7,
        threads,
        technique: "im2col".into(),
        augment: true,
        init: Init::He,
    }
}

#[test]
fn a_few_hundred_steps_lower_the_loss() {
    let data = Cifar10::sample();
    let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(1)).unwrap();
    let mut trainer = Trainer::new(net, Normalizer::fit(&data.train), config(2)).unwrap();
    let mut losses = Vec::new();
    for epoch in 0..6 {
        let order = epoch_order(7, epoch, data.train.len());
        for (s, chunk) in order.chunks(16).enumerate() {
            let mut augments = vec![Default::default(); chunk.len()];
            draw_augments(7, epoch * 100 + s as u64, &mut augments);
            losses.push(trainer.step(&data.train, chunk, &augments, 1.0).unwrap().0);
        }
    }
    assert!(losses.len() >= 300, "{} steps", losses.len());
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let (first, last) = (mean(&losses[..30]), mean(&losses[losses.len() - 30..]));
    assert!(
        first > 2.0,
        "the untrained loss should be near ln 10, got {first}"
    );
    assert!(last < first - 0.4, "loss went from {first} to {last}");
}

fn train_args(
    data: &std::path::Path,
    out: &std::path::Path,
    max_steps: Option<u64>,
    resume: bool,
) -> TrainArgs {
    TrainArgs {
        data: DataArgs {
            dir: data.to_path_buf(),
            is_default: false,
        },
        config: config(2),
        arch: None,
        out: out.to_path_buf(),
        resume: resume.then(|| out.to_path_buf()),
        init_from: None,
        max_steps,
    }
}

#[test]
fn resuming_gives_the_uninterrupted_run_bit_for_bit() {
    let data = cifar_dir("resume-data", 96, 32);
    let whole = temp_dir("resume-whole");
    let parts = temp_dir("resume-parts");
    let stop = Arc::new(AtomicBool::new(false));
    let full = train(train_args(&data, &whole, None, false), stop.clone()).unwrap();
    assert_eq!(full.step, 18, "3 epochs of 6 steps");
    // Stop mid-epoch (step 8 of 18), then after an epoch boundary (step 12), then finish.
    train(train_args(&data, &parts, Some(8), false), stop.clone()).unwrap();
    train(train_args(&data, &parts, Some(12), true), stop.clone()).unwrap();
    let resumed = train(train_args(&data, &parts, None, true), stop).unwrap();
    assert_eq!(resumed.step, full.step);
    for file in ["model.safetensors", "optimizer.safetensors"] {
        assert!(
            bytes(&whole.join(file)) == bytes(&parts.join(file)),
            "{file} differs after resuming"
        );
    }
    assert_eq!(resumed.history.steps, full.history.steps);
    let untimed = |h: &network::train::History| -> Vec<(usize, f32, f32, f32)> {
        h.epochs
            .iter()
            .map(|e| (e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy))
            .collect()
    };
    assert_eq!(untimed(&resumed.history), untimed(&full.history));
    for dir in [data, whole, parts] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn checkpoints_round_trip_bit_exactly() {
    let data = cifar_dir("roundtrip-data", 64, 16);
    let out = temp_dir("roundtrip-run");
    let state = train(
        TrainArgs {
            config: TrainConfig {
                epochs: 1,
                ..config(1)
            },
            ..train_args(&data, &out, None, false)
        },
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let net = Network::new(&state.arch, Init::He, &mut StdRng::seed_from_u64(99)).unwrap();
    let mut loaded = Trainer::new(net, state.normalizer.clone(), config(1)).unwrap();
    loaded.load_weights(&out.join("model.safetensors")).unwrap();
    loaded
        .load_momentum(&out.join("optimizer.safetensors"))
        .unwrap();
    let resaved = temp_dir("roundtrip-resaved");
    loaded.save(&resaved, &state).unwrap();
    for file in [
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
        "history.json",
    ] {
        assert!(
            bytes(&out.join(file)) == bytes(&resaved.join(file)),
            "{file} changed on a load and save"
        );
    }
    // The names and shapes of PyTorch's nn.Sequential state_dict.
    let tensors = bytes(&out.join("model.safetensors"));
    let st = safetensors::SafeTensors::deserialize(&tensors).unwrap();
    let mut names: Vec<(String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    names.sort();
    let want: Vec<(String, Vec<usize>)> = [
        ("0.bias", vec![16]),
        ("0.weight", vec![16, 3, 5, 5]),
        ("10.bias", vec![10]),
        ("10.weight", vec![10, 320]),
        ("3.bias", vec![20]),
        ("3.weight", vec![20, 16, 5, 5]),
        ("6.bias", vec![20]),
        ("6.weight", vec![20, 20, 5, 5]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(names, want);
    for dir in [data, out, resaved] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_fixed_thread_count_is_reproducible_and_threads_agree_closely() {
    let data = Cifar10::sample().train.truncated(64);
    let run = |threads| {
        let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(3)).unwrap();
        let mut trainer = Trainer::new(net, Normalizer::fit(&data), config(threads)).unwrap();
        let idx: Vec<usize> = (0..64).collect();
        for chunk in idx.chunks(16) {
            trainer.step(&data, chunk, &[], 1.0).unwrap();
        }
        trainer.net.layers[0].params().unwrap().0.to_owned()
    };
    assert_eq!(run(2), run(2), "same threads, same seed: identical weights");
    let (one, two) = (run(1), run(2));
    let diff = one
        .iter()
        .zip(&two)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "1 and 2 threads differ by {diff}");
}
