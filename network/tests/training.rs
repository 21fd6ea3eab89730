//! Training works: the loss falls on the sample, checkpoints round-trip bit-exactly, a resumed
//! run equals the uninterrupted one, and the run directory holds what it should.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::*;
use network::arch::seed_network;
use network::batch::{Normalizer, draw_augments, epoch_order};
use network::config::{LrScaling, TrainConfig, Validation};
use network::data::Cifar10;
use network::events::Quiet;
use network::history::History;
use network::model::{Init, Network};
use network::optim::Schedule;
use network::run::{NewRun, Run, RunOptions};
use network::store::{Checkpoint, Place};
use network::tensors::{TRAINED, read_groups, read_pairs, serialize_pairs};
use network::train::Trainer;
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
        technique: "im2col".parse().unwrap(),
        augment: true,
        init: Init::He,
        ..TrainConfig::default()
    }
}

/// [`config`] with every optional part of the recipe on, so that resuming is proven with them.
fn recipe_config(threads: usize) -> TrainConfig {
    TrainConfig {
        validation: Validation::Images(16),
        lr_scaling: LrScaling::Sqrt,
        warmup: 1.5,
        label_smoothing: 0.1,
        shift: 3,
        tta: 5,
        test_every_epoch: true,
        ema: 0.5,
        ..config(threads)
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
            draw_augments(7, epoch * 100 + s as u64, 2, &mut augments);
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

/// Creates (or resumes) the run `out` on `data` and fits it up to `max_steps`.
fn fit(data: &Path, out: &Path, max_steps: Option<u64>, resume: bool) -> Run {
    let options = RunOptions::default();
    let mut run = if resume {
        Run::resume(out, None, &options).unwrap()
    } else {
        let new = NewRun {
            arch: seed_network(),
            config: recipe_config(2),
            ..NewRun::default()
        };
        let data = Cifar10::load_dir(data).unwrap();
        Run::create(&Place::Dir(out.to_path_buf()), data, new, &options).unwrap()
    };
    run.fit(max_steps, &AtomicBool::new(false), &mut Quiet)
        .unwrap();
    run
}

/// Every tensor of a run's newest checkpoint, by file and name.
fn tensors(run: &Path) -> Vec<(String, Vec<u8>)> {
    let checkpoint = Checkpoint::latest(run).unwrap();
    let mut all = Vec::new();
    for file in [&checkpoint.model, &checkpoint.optimizer] {
        let bytes = bytes(file);
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, view) in st.tensors() {
            all.push((format!("{}:{name}", file.display()), view.data().to_vec()));
        }
    }
    all.sort();
    all.into_iter()
        .map(|(n, v)| (n.rsplit('/').next().unwrap().to_string(), v))
        .collect()
}

#[test]
fn resuming_gives_the_uninterrupted_run_bit_for_bit() {
    let data = cifar_dir("resume-data", 96, 32);
    let whole = temp_dir("resume-whole");
    let parts = temp_dir("resume-parts");
    let full = fit(&data, &whole, None, false);
    assert_eq!(
        full.state().progress.step,
        15,
        "3 epochs of 5 steps (16 images held out)"
    );
    // Stop mid-epoch (step 7 of 15), then after an epoch boundary (step 10), then finish.
    drop(fit(&data, &parts, Some(7), false));
    drop(fit(&data, &parts, Some(10), true));
    let resumed = fit(&data, &parts, None, true);
    let place = |r: &Run| {
        let p = r.state().progress;
        // epochs.jsonl holds timings, whose digits differ from run to run.
        (p.epoch, p.step_in_epoch, p.step, p.steps_bytes)
    };
    assert_eq!(place(&resumed), place(&full));
    assert!(
        tensors(&whole) == tensors(&parts),
        "the tensors differ after resuming"
    );
    assert_eq!(resumed.history().steps, full.history().steps);
    /// An epoch without its timings: number, loss, accuracy, validation and test accuracy.
    type Untimed = (usize, f32, f32, Option<f32>, Option<f32>);
    let untimed = |h: &History| -> Vec<Untimed> {
        h.epochs
            .iter()
            .map(|e| {
                let held = (e.validation_accuracy, e.test_accuracy);
                (e.epoch, e.train_loss, e.train_accuracy, held.0, held.1)
            })
            .collect()
    };
    assert_eq!(untimed(resumed.history()), untimed(full.history()));
    // What is on disk is what was in memory.
    let on_disk = Checkpoint::latest(&parts).unwrap().history(&parts).unwrap();
    assert_eq!(on_disk.steps, full.history().steps);
    assert_eq!(untimed(&on_disk), untimed(full.history()));
    drop((full, resumed));
    for dir in [data, whole, parts] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The parameters of `net`, flattened in layer order.
fn flat(net: &Network) -> Vec<f32> {
    let params = net.layers.iter().filter_map(|l| l.params());
    params
        .flat_map(|(w, b)| w.iter().chain(b.iter()).copied().collect::<Vec<_>>())
        .collect()
}

#[test]
fn the_average_of_the_weights_is_evaluated_and_moves_by_its_decay() {
    let data = Cifar10::sample();
    let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(1)).unwrap();
    let cfg = TrainConfig {
        ema: 1.0,
        ..config(1)
    };
    let mut trainer = Trainer::new(net, Normalizer::fit(&data.train), cfg).unwrap();
    let start = flat(&trainer.net);
    assert_eq!(
        flat(trainer.model()),
        start,
        "the average starts at the weights"
    );
    trainer.step(&data.train, &[0, 1, 2, 3], &[], 1.0).unwrap();
    let stepped = flat(&trainer.net);
    assert_ne!(stepped, start);
    assert_eq!(
        flat(trainer.model()),
        start,
        "a step moves the weights only"
    );
    trainer.update_average(0.75);
    for ((a, s), w) in flat(trainer.model()).iter().zip(&start).zip(&stepped) {
        assert!(
            (a - (0.75 * s + 0.25 * w)).abs() <= 1e-6 * (1.0 + a.abs()),
            "{a} {s} {w}"
        );
    }
    let model: *const Network = trainer.model();
    assert!(
        std::ptr::eq(trainer.infer().net, model),
        "evaluation uses the average"
    );
}

/// A run with an average saves it as its model, the trained weights in the optimizer file.
#[test]
fn a_run_with_an_average_saves_it_as_the_model_and_the_weights_beside_it() {
    let data = cifar_dir("average-data", 96, 32);
    let out = temp_dir("average-run");
    let run = fit(&data, &out, Some(8), false);
    let checkpoint = Checkpoint::latest(&out).unwrap();
    let (model, _) = read_pairs(&run.trainer().net, &checkpoint.model).unwrap();
    let (groups, _) =
        read_groups(&run.trainer().net, &checkpoint.optimizer, &["", TRAINED]).unwrap();
    let mut average = run.trainer().net.clone();
    average.set_params(model);
    let mut trained = run.trainer().net.clone();
    trained.set_params(groups[1].clone());
    assert_eq!(flat(&average), flat(run.trainer().model()));
    assert_eq!(flat(&trained), flat(&run.trainer().net));
    assert_ne!(flat(&average), flat(&trained));
    drop(run);
    for dir in [data, out] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn checkpoints_round_trip_bit_exactly() {
    let data = cifar_dir("roundtrip-data", 64, 16);
    let out = temp_dir("roundtrip-run");
    drop(fit(&data, &out, Some(4), false));
    let checkpoint = Checkpoint::latest(&out).unwrap();
    let state = &checkpoint.state;
    let net = Network::new(
        &state.settings.arch,
        Init::He,
        &mut StdRng::seed_from_u64(99),
    )
    .unwrap();
    // The run keeps an average: the optimizer file holds the trained weights too.
    let with_weights: &[&str] = &["", TRAINED];
    for (file, prefixes) in [
        (&checkpoint.model, &[""][..]),
        (&checkpoint.optimizer, with_weights),
    ] {
        let (groups, info) = read_groups(&net, file, prefixes).unwrap();
        let info = info.unwrap();
        assert_eq!(info.step, 4);
        assert_eq!(info.run.as_deref(), Some(state.run.as_str()));
        let groups: Vec<_> = prefixes
            .iter()
            .copied()
            .zip(groups.iter().map(|g| &g[..]))
            .collect();
        let again = serialize_pairs(&net, &groups, &info).unwrap();
        assert!(
            bytes(file) == again,
            "{} changed on a load and save",
            file.display()
        );
    }
    // The stable path is the newest generation's model.
    assert!(bytes(&out.join("model.safetensors")) == bytes(&checkpoint.model));
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
    for dir in [data, out] {
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
