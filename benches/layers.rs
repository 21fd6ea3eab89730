//! The timing study's criterion benchmarks: every layer × pass × technique of the seed network
//! at batch 1 and 5, batch sweeps, an input-size sweep, and the machine's sgemm peak.
//! `cargo bench -p study` runs them; `-- --test` runs each once (CI).
//!
//! Throughput is examples per second (the batch size), except for the sgemm peak, whose
//! elements are floating-point operations, so criterion prints GFLOP/s as "Gelem/s".

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use kernels::Technique;
use ndarray::Array2;
use study::*;

/// Naive cases take seconds per iteration at the larger shapes: fewer samples, never skipped.
fn samples(t: Technique) -> usize {
    if t == Technique::Naive { 10 } else { 20 }
}

/// One criterion group: `pass` of `layer` with each technique at each batch size.
fn bench_group(
    c: &mut Criterion,
    name: String,
    layer: &Layer,
    pass: Pass,
    techniques: &[Technique],
    batches: &[usize],
) {
    let mut group = c.benchmark_group(name);
    for &t in techniques {
        for &batch in batches {
            let mut run = layer.prepare(pass, t, batch);
            group
                .sample_size(samples(t))
                .throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(t.name(), batch), |b| b.iter(&mut run));
        }
    }
    group.finish();
}

fn layers(c: &mut Criterion) {
    for case in &SEED_NETWORK {
        for pass in Pass::ALL {
            bench_group(
                c,
                group(case.name, pass),
                &case.layer,
                pass,
                &Technique::ALL,
                &TABLE_BATCHES,
            );
        }
    }
}

fn batch_sweeps(c: &mut Criterion) {
    for (name, techniques) in BATCH_SWEEPS {
        let case = seed_case(name).expect("swept layers are seed layers");
        for pass in Pass::ALL {
            bench_group(
                c,
                sweep_group(name, pass),
                &case.layer,
                pass,
                techniques,
                &SWEEP_BATCHES,
            );
        }
    }
}

fn size_sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group(SIZE_SWEEP_GROUP);
    for t in Technique::ALL {
        for side in SWEEP_SIDES {
            let mut run = size_sweep_layer(side).prepare(Pass::Forward, t, 1);
            group
                .sample_size(samples(t))
                .throughput(Throughput::Elements(1));
            group.bench_function(BenchmarkId::new(t.name(), side), |b| b.iter(&mut run));
        }
    }
    group.finish();
}

fn sgemm_peak(c: &mut Criterion) {
    let n = PEAK_SIDE;
    let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 17) as f32 / 17.0);
    let b = a.t().to_owned();
    let mut out = Array2::zeros((n, n));
    let mut group = c.benchmark_group(PEAK_GROUP);
    group
        .sample_size(20)
        .throughput(Throughput::Elements(2 * (n as u64).pow(3)));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        group.bench_function(BenchmarkId::new("threads", threads), |bench| {
            bench.iter(|| sgemm_on_threads(&pool, &a, &b, &mut out))
        });
    }
    group.finish();
}

criterion_group! {
    name = study;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
    targets = sgemm_peak, layers, batch_sweeps, size_sweep
}

fn main() {
    // criterion's HTML charts draw text too: with the bundled font, not the system's.
    register_fonts();
    study();
    Criterion::default().configure_from_args().final_summary();
}
