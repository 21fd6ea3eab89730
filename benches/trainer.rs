//! The seed's whole-trainer row: the time to train 1000 examples (forward, backward and SGD
//! update of the whole network) with each technique at batch 5 on one thread, then with the
//! fastest per layer (`auto`) at larger batches and on every core. Examples are drawn from the
//! sample embedded in the `network` crate, with augmentation, as in training. The techniques
//! whose step costs the same at any batch (naive, per-output, axis-reduce) train 100 examples
//! per iteration, which the report scales to 1000; in quick mode (`STUDY_QUICK=1`) every
//! iteration trains 50 examples (20 for those three), with shorter warm-up and measurement.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use network::arch::seed_network;
use network::batch::{Normalizer, draw_augments};
use network::config::TrainConfig;
use network::data::Cifar10;
use network::model::{Init, Network};
use network::optim::Schedule;
use network::train::Trainer;
use rand::SeedableRng;
use rand::rngs::StdRng;
use study::{TRAINER_GROUP, quick, trainer_cases};

fn trainer(c: &mut Criterion) {
    let data = Cifar10::sample().train;
    let normalizer = Normalizer::fit(&data);
    let mut group = c.benchmark_group(TRAINER_GROUP);
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for case in trainer_cases() {
        let examples = case.examples(quick());
        group.throughput(Throughput::Elements(examples as u64));
        let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(1))
            .expect("the seed network");
        let config = TrainConfig {
            epochs: 1,
            batch_size: case.batch,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            schedule: Schedule::Constant,
            seed: 1,
            threads: case.threads,
            technique: case.technique.parse().expect("a technique name or auto"),
            augment: true,
            init: Init::He,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(net, normalizer.clone(), config).expect("valid configuration");
        let order: Vec<usize> = (0..examples).map(|i| i % data.len()).collect();
        group.bench_function(BenchmarkId::new(case.id(), case.batch), |b| {
            b.iter(|| {
                for (step, chunk) in order.chunks(case.batch).enumerate() {
                    let mut augments = vec![Default::default(); chunk.len()];
                    draw_augments(1, step as u64, 2, &mut augments);
                    t.step(&data, chunk, &augments, 1.0)
                        .expect("a training step");
                }
            })
        });
    }
    group.finish();
}

/// A tenth of a second of warm-up and 5 s of samples (1 s in quick mode), without criterion's
/// HTML charts.
fn config() -> Criterion {
    let measure = if quick() { 1 } else { 5 };
    Criterion::default()
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(measure))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = trainer
}
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
