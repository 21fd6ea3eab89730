//! The timing study's criterion benchmarks: every layer × pass × technique of the seed network
//! at batch 1 and 5, the naive and direct techniques at every instruction-set level the CPU
//! supports, batch sweeps, an input-size sweep, and the machine's limits (the sgemm peak and
//! the FMA peak of each level). `cargo bench -p study` runs them; `-- --test` runs each once
//! (CI); `STUDY_QUICK=1` runs fewer, shorter samples (`scripts/bench.sh --quick`).
//!
//! Throughput is examples per second (the batch size), except for the two peaks, whose
//! elements are floating-point operations, so criterion prints GFLOP/s as "Gelem/s".

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
};
use kernels::{Isa, Technique, fma_loop, with_isa};
use ndarray::Array2;
use study::*;

/// Naive cases take seconds per iteration at the larger shapes: fewer samples, never skipped.
/// Quick mode takes criterion's least, 10, for every case.
fn samples(t: Technique) -> usize {
    if t == Technique::Naive || quick() {
        10
    } else {
        20
    }
}

/// A criterion group of kernel benchmarks. Quick mode samples flat (every sample the same
/// number of iterations), so that a slow naive case runs 10 iterations, not criterion's 55.
fn new_group(c: &mut Criterion, name: impl Into<String>) -> BenchmarkGroup<'_, WallTime> {
    let mut group = c.benchmark_group(name);
    if quick() {
        group.sampling_mode(SamplingMode::Flat);
    }
    group
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
    let mut group = new_group(c, name);
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

/// The naive and direct techniques at every level this CPU supports, the level forced on the
/// benchmarking thread (criterion runs each benchmark on the calling thread).
fn isa_levels(c: &mut Criterion) {
    for case in &SEED_NETWORK {
        for pass in Pass::ALL {
            let mut group = new_group(c, isa_group(case.name, pass));
            for t in ISA_TECHNIQUES {
                for isa in Isa::available() {
                    let mut run = case.layer.prepare(pass, t, ISA_BATCH);
                    group
                        .sample_size(samples(t))
                        .throughput(Throughput::Elements(ISA_BATCH as u64));
                    with_isa(isa, || {
                        group.bench_function(
                            BenchmarkId::new(isa_function(t, isa), ISA_BATCH),
                            |b| b.iter(&mut run),
                        );
                    })
                    .expect("available levels run on this CPU");
                }
            }
            group.finish();
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
                sweep_batches(quick()),
            );
        }
    }
}

fn size_sweep(c: &mut Criterion) {
    let mut group = new_group(c, SIZE_SWEEP_GROUP);
    for t in Technique::ALL {
        for &side in sweep_sides(quick()) {
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

/// The FMA peak of every level this CPU supports, on 1 thread and on 2: the limit each
/// kernel's GFLOP/s is a fraction of. The portable lanes have no fused instruction: their loop
/// runs separate multiply and add chains (see `fma_loop`).
fn fma_peak(c: &mut Criterion) {
    let mut group = c.benchmark_group(FMA_GROUP);
    for isa in Isa::available() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            let flops = threads as f64 * fma_loop(isa, FMA_ROUNDS).0;
            group
                .sample_size(20)
                .throughput(Throughput::Elements(flops as u64));
            group.bench_function(BenchmarkId::new(isa.name(), threads), |bench| {
                bench.iter(|| pool.broadcast(|_| fma_loop(isa, FMA_ROUNDS).1))
            });
        }
    }
    group.finish();
}

/// Criterion's timing: half a second of warm-up and 1.5 s of samples per benchmark, a tenth
/// and a fifth of that in quick mode; never criterion's HTML charts (drawing them took longer
/// than the samples; the report draws its own from criterion's JSON).
fn config() -> Criterion {
    let (warm_up, measure) = if quick() { (50, 300) } else { (500, 1500) };
    Criterion::default()
        .warm_up_time(Duration::from_millis(warm_up))
        .measurement_time(Duration::from_millis(measure))
        .without_plots()
}

criterion_group! {
    name = study;
    config = config();
    targets = fma_peak, sgemm_peak, layers, isa_levels, batch_sweeps, size_sweep
}

fn main() {
    study();
    Criterion::default().configure_from_args().final_summary();
}
