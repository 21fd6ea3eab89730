//! Inference: the worker threads and their buffers, forward passes for evaluation, and
//! [`Model`], a trained network with its input normalisation — what `eval`, `test` and
//! `visualize` use, with no optimiser state.

use std::path::Path;

use kernels::Technique;
use ndarray::{
    Array2, Array3, ArrayView2, ArrayView3, ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::arch::LayerSpec;
use crate::batch::{Augment, Normalizer, fill_batch};
use crate::budget::{Footprint, default_budget};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Init, Network, Plan, Workspace};
use crate::store::Checkpoint;
use crate::tensors::{TensorInfo, read_pairs};

/// Examples per worker in one round of evaluation (each share runs in pieces of
/// [`MICRO_BATCH`]; larger rounds wake the pool less often).
pub const EVAL_CHUNK: usize = 100;

/// The most examples a worker passes through the network at once: a larger share runs in
/// pieces of this size, so that one layer's output is still in cache when the next layer reads
/// it. Measured on a Zen 3 core at AVX2 (`network bench --threads 1 --batches 32,128`, two
/// rounds): inference at batch 128 on one thread 9,089–9,293 examples/s as one piece, 9,576–9,806
/// in pieces of 16, 9,511–9,680 in pieces of 8; on two threads (`--runs 5`, two rounds) 15,687–
/// 15,826 in pieces of 1, 16,899–16,952 of 2, 17,653–18,072 of 4, 18,824–18,958 of 16. A
/// matter of caches, not of vector width: not measured at the other levels.
pub const MICRO_BATCH: usize = 16;

/// One workspace per worker, and a thread pool for every worker but the first, which is the
/// calling thread (see [`Workers::run`]).
pub struct Workers {
    /// `threads − 1` threads; none for one worker.
    pool: Option<rayon::ThreadPool>,
    /// One per worker.
    pub(crate) spaces: Vec<Workspace>,
}

impl Workers {
    /// `threads` workspaces for `net`, each for up to `capacity` examples.
    pub fn new(net: &Network, threads: usize, capacity: usize) -> Result<Self> {
        let pool = match threads {
            0 | 1 => None,
            // Named, so that their CPU can be told from the page server's (`top -H`,
            // page_cost.py); the calling thread is worker 0.
            _ => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads - 1)
                    .thread_name(|i| format!("worker-{}", i + 1))
                    .build()
                    .map_err(|e| {
                        Error::Usage(format!("--threads: cannot start {threads} threads: {e}"))
                    })?,
            ),
        };
        let spaces = (0..threads)
            .map(|_| Workspace::new(net, capacity))
            .collect();
        Ok(Workers { pool, spaces })
    }

    /// Runs `job(k, workspace k, &mut outs[k])` for every `k` below `outs.len()` (at most one
    /// per workspace), all at once: job 0 on the calling thread, the others on the pool's
    /// threads; returns when every job is done.
    ///
    /// The caller works rather than waits: with a pool of a thread per worker, it slept beside
    /// them (three threads on a 2-core machine), and waking it after the last job took about
    /// 100 µs of a 4.9 ms step at batch 32 on 2 threads (measured on a Zen 3 core, `Instant`s
    /// around the pool's call and each job).
    pub(crate) fn run<R: Send>(
        &mut self,
        outs: &mut [R],
        job: impl Fn(usize, &mut Workspace, &mut R) + Sync,
    ) {
        assert!(
            outs.len() <= self.spaces.len(),
            "a job per workspace at most"
        );
        let mut jobs = self.spaces.iter_mut().zip(outs.iter_mut()).enumerate();
        let Some((_, (ws, out))) = jobs.next() else {
            return;
        };
        let job = &job;
        match &self.pool {
            Some(pool) => pool.in_place_scope(|scope| {
                for (k, (ws, out)) in jobs {
                    scope.spawn(move |_| job(k, ws, out));
                }
                job(0, ws, out);
            }),
            None => job(0, ws, out),
        }
    }
}

/// What evaluation measures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// Fraction right.
    pub accuracy: f32,
    /// Mean cross-entropy.
    pub loss: f32,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u32>>,
}

impl Evaluation {
    /// Accuracy of each true class.
    pub fn per_class(&self) -> Vec<f32> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(c, row)| row[c] as f32 / row.iter().sum::<u32>().max(1) as f32)
            .collect()
    }
}

/// Forward passes over borrowed network state: a [`Model`]'s or a trainer's.
pub struct Inference<'a> {
    /// The network.
    pub net: &'a Network,
    /// Techniques per layer.
    pub plan: &'a Plan,
    /// Input normalisation.
    pub normalizer: &'a Normalizer,
    /// The workers.
    pub workers: &'a mut Workers,
}

impl Inference<'_> {
    /// Forward passes over all of `data`: accuracy, loss and the confusion matrix. Each image's
    /// prediction averages the probabilities of its `views` (see [`crate::batch::tta_views`]; the image and
    /// its mirror by default: the training augmentation flips images, so both are views the
    /// network knows).
    pub fn evaluate(&mut self, data: &Dataset, views: &[Augment]) -> Result<Evaluation> {
        let classes = self.net.classes();
        let mut confusion = vec![vec![0u32; classes]; classes];
        let mut loss = 0.0f64;
        let chunk = EVAL_CHUNK * self.workers.spaces.len();
        let all: Vec<usize> = (0..data.len()).collect();
        for indices in all.chunks(chunk) {
            let mut probs = Array2::zeros((indices.len(), classes));
            for view in views {
                let same = vec![*view; indices.len()];
                probs += &self.augmented_probabilities(data, indices, &same)?;
            }
            probs /= views.len().max(1) as f32;
            for (r, &i) in indices.iter().enumerate() {
                let truth = usize::from(data.labels[i]);
                loss -= f64::from(probs[[r, truth]].max(f32::MIN_POSITIVE)).ln();
                confusion[truth][argmax_row(&probs.view(), r)] += 1;
            }
        }
        let right: u32 = (0..classes).map(|c| confusion[c][c]).sum();
        Ok(Evaluation {
            accuracy: right as f32 / data.len().max(1) as f32,
            loss: (loss / data.len().max(1) as f64) as f32,
            confusion,
        })
    }

    /// Class probabilities of `indices` of `data`, each augmented by the matching entry of
    /// `augments` (none when it is empty), `[n, classes]`. Each worker fills its own share.
    pub fn augmented_probabilities(
        &mut self,
        data: &Dataset,
        indices: &[usize],
        augments: &[Augment],
    ) -> Result<Array2<f32>> {
        let norm = self.normalizer;
        self.forward_probabilities(indices.len(), &|range, x| {
            let aug = augments.get(range.clone()).unwrap_or(&[]);
            fill_batch(data, &indices[range], aug, norm, x);
        })
    }

    /// Class probabilities of normalised `inputs` `[n, c, h, w]`, `[n, classes]`.
    pub fn probabilities_of(&mut self, inputs: ArrayView4<f32>) -> Result<Array2<f32>> {
        self.forward_probabilities(inputs.shape()[0], &|range, mut x| {
            x.assign(&inputs.slice(ndarray::s![range, .., .., ..]));
        })
    }

    /// Class probabilities of `n` examples, `[n, classes]`: the examples are split among the
    /// workers, each filling its inputs with `fill(range of examples, input slots)` and running
    /// its share in pieces of at most [`MICRO_BATCH`].
    fn forward_probabilities(
        &mut self,
        n: usize,
        fill: &(dyn Fn(std::ops::Range<usize>, ArrayViewMut4<f32>) + Sync),
    ) -> Result<Array2<f32>> {
        let mut out = Array2::zeros((n, self.net.classes()));
        let workers = self.workers.spaces.len();
        let round = self.workers.spaces[0].capacity() * workers;
        let (net, plan) = (self.net, self.plan);
        for (start, mut rows) in (0..n)
            .step_by(round)
            .zip(out.axis_chunks_iter_mut(Axis(0), round))
        {
            let per = rows.nrows().div_ceil(workers);
            // Each worker's share: its first example, its rows of `out`, how it went.
            let mut shares: Vec<_> = rows
                .axis_chunks_iter_mut(Axis(0), per)
                .enumerate()
                .map(|(k, p)| (start + k * per, p, Result::Ok(())))
                .collect();
            let share = |ws: &mut Workspace, first: usize, mut p: ArrayViewMut2<f32>| {
                for (k, mut p) in p.axis_chunks_iter_mut(Axis(0), MICRO_BATCH).enumerate() {
                    let (first, m) = (first + k * MICRO_BATCH, p.nrows());
                    fill(first..first + m, ws.input_mut(m));
                    ws.labels_mut(m).fill(0);
                    ws.forward_inference(net, plan, m)?;
                    ws.loss(plan, m)?;
                    p.assign(&ws.probs(m));
                }
                Ok(())
            };
            self.workers.run(&mut shares, |_, ws, (first, p, done)| {
                *done = share(ws, *first, p.view_mut());
            });
            shares.into_iter().try_for_each(|(_, _, done)| done)?;
        }
        Ok(out)
    }

    /// The gradient of logit `class` with respect to a normalised input `[c, h, w]`: the
    /// backward pass started from that score alone, with the training kernels; the weights are
    /// left as they are.
    pub fn logit_gradient(&mut self, input: ArrayView3<f32>, class: usize) -> Result<Array3<f32>> {
        let ws = self.backward_from_logit(input, class)?;
        Ok(ws.input_grad(1).index_axis(Axis(0), 0).to_owned())
    }

    /// Every point of the network for one normalised input `[c, h, w]`: the input and each
    /// layer's output, with the gradient of logit `class` there (see
    /// [`Inference::logit_gradient`]).
    pub fn trace(&mut self, input: ArrayView3<f32>, class: usize) -> Result<Vec<TracePoint>> {
        let net = self.net;
        let ws = self.backward_from_logit(input, class)?;
        Ok((0..=net.layers.len())
            .map(|i| TracePoint {
                name: if i == 0 {
                    "input".into()
                } else {
                    format!("{} (layer {i})", net.layers[i - 1].name())
                },
                activation: as_maps(ws.activation(i, 0)),
                gradient: as_maps(ws.gradient(i, 0)),
            })
            .collect())
    }

    /// The forward pass of `input` and the backward pass from logit `class` alone, through
    /// the first worker's workspace, which then holds every activation and gradient.
    fn backward_from_logit(&mut self, input: ArrayView3<f32>, class: usize) -> Result<&Workspace> {
        let (net, plan) = (self.net, self.plan);
        if class >= net.classes() {
            return Err(Error::Usage(format!(
                "class {class} is past the network's {} classes",
                net.classes()
            )));
        }
        let ws = &mut self.workers.spaces[0];
        ws.input_mut(1).index_axis_mut(Axis(0), 0).assign(&input);
        ws.forward_every_point(net, plan, 1)?;
        let mut seed = ws.logits_grad_mut(1);
        seed.fill(0.0);
        seed[[0, class]] = 1.0;
        ws.backward_layers(net, plan, 1, true)?;
        Ok(ws)
    }
}

/// One point of the network for one example: what enters the first layer (the input) or
/// leaves a layer, and the gradient of a class's score there.
#[derive(Clone, Debug)]
pub struct TracePoint {
    /// "input", or the layer's kind and index.
    pub name: String,
    /// The values `[c, h, w]`; a vector `[n]` (after an fc layer) as `[n, 1, 1]`.
    pub activation: Array3<f32>,
    /// The gradient of the class's score with respect to them, shaped as `activation`.
    pub gradient: Array3<f32>,
}

/// A point's values as `[c, h, w]` maps: a vector `[n]` is `n` maps of one pixel.
fn as_maps(values: ndarray::ArrayViewD<f32>) -> Array3<f32> {
    let shape = match values.shape() {
        &[c, h, w] => (c, h, w),
        other => (other.iter().product(), 1, 1),
    };
    let flat: Vec<f32> = values.iter().copied().collect();
    Array3::from_shape_vec(shape, flat).expect("the shape holds every value")
}

/// The index of the largest value of row `r`.
pub fn argmax_row(probs: &ArrayView2<f32>, r: usize) -> usize {
    probs
        .row(r)
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (c, &p)| {
            if p > best.1 { (c, p) } else { best }
        })
        .0
}

/// A trained network, its input normalisation and its architecture: evaluation, prediction
/// and the gradients the pictures need, with no optimiser state.
pub struct Model {
    /// The network.
    pub net: Network,
    /// Input normalisation.
    pub normalizer: Normalizer,
    plan: Plan,
    workers: Workers,
}

impl Model {
    /// `net` with `normalizer`, running `technique` everywhere on `threads` threads.
    pub fn new(
        net: Network,
        normalizer: Normalizer,
        threads: usize,
        technique: Technique,
    ) -> Result<Self> {
        crate::config::in_range("--threads", threads, 1, crate::config::MAX_THREADS)?;
        normalizer.check("the normaliser")?;
        let plan = Plan::uniform(&net, technique);
        let workers = Workers::new(&net, threads, EVAL_CHUNK)?;
        Ok(Model {
            net,
            normalizer,
            plan,
            workers,
        })
    }

    /// A model from a run directory (its latest complete checkpoint), or from a safetensors
    /// file with the architecture `arch` (the seed network if `None`) and the normalisation
    /// its metadata carries. The network must take CIFAR-10 images to the 10 classes (the
    /// normaliser fills its inputs from them) and its workers fit the memory budget: both
    /// checked from the layer list, before anything is allocated.
    pub fn load(path: &Path, arch: Option<&Path>, threads: usize) -> Result<Self> {
        crate::config::in_range("--threads", threads, 1, crate::config::MAX_THREADS)?;
        if !path.is_dir() {
            let spec = match arch {
                Some(a) => crate::arch::read(a)?,
                None => crate::arch::seed_network(),
            };
            check_fits(&spec, threads, arch.unwrap_or(path))?;
            return Self::from_file(&spec, path, None, threads, None);
        }
        if arch.is_some() {
            return Err(Error::Usage(format!(
                "--arch is for a bare model file; {} is a run directory, which knows its own",
                path.display()
            )));
        }
        let checkpoint = Checkpoint::latest(path)?;
        let settings = &checkpoint.state.settings;
        check_fits(&settings.arch, threads, path)?;
        let normalizer = Some(settings.normalizer.clone());
        Self::from_file(
            &settings.arch,
            &checkpoint.model,
            normalizer,
            threads,
            Some(&checkpoint),
        )
    }

    /// The model in `file` of architecture `spec`; from a run's `checkpoint`, whose identity
    /// the file must carry.
    fn from_file(
        spec: &[LayerSpec],
        file: &Path,
        normalizer: Option<Normalizer>,
        threads: usize,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Self> {
        if !file.exists() {
            return Err(Error::Checkpoint(format!(
                "{} does not exist",
                file.display()
            )));
        }
        let net = Network::new(spec, Init::He, &mut StdRng::seed_from_u64(0))?;
        let (pairs, info) = read_pairs(&net, file)?;
        if let Some(checkpoint) = checkpoint {
            checkpoint.check_tensors(info.as_ref(), file)?;
        }
        let normalizer = match (normalizer, info.and_then(|i: TensorInfo| i.normalizer)) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                return Err(Error::Checkpoint(format!(
                    "{} carries no input normalisation (metadata \"network\"): it was not saved by this trainer",
                    file.display()
                )));
            }
        };
        normalizer.check(&file.display().to_string())?;
        let mut model = Model::new(net, normalizer, threads, Technique::Direct)?;
        model.net.set_params(pairs);
        Ok(model)
    }

    /// An image's bytes `[c, h, w]`, normalised as the network takes it, `[c, h, w]`.
    pub fn input_of(&self, bytes: ArrayView3<u8>) -> Array3<f32> {
        let mut input = Array3::zeros(bytes.dim());
        let flat: Vec<u8> = bytes.iter().copied().collect();
        self.normalizer.fill(&flat, false, (0, 0), input.view_mut());
        input
    }

    /// Every class with its probability for a normalised input `[c, h, w]`, the most likely
    /// first.
    pub fn ranked(&mut self, input: ArrayView3<f32>) -> Result<Vec<(usize, f32)>> {
        let probs = self.probabilities_of(input.insert_axis(Axis(0)))?;
        let mut ranked: Vec<(usize, f32)> = probs.row(0).iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ranked)
    }

    /// Forward passes with this model.
    pub fn infer(&mut self) -> Inference<'_> {
        Inference {
            net: &self.net,
            plan: &self.plan,
            normalizer: &self.normalizer,
            workers: &mut self.workers,
        }
    }

    /// Accuracy, loss and confusion matrix on `data`, each prediction averaged over `views`
    /// (see [`Inference::evaluate`]).
    pub fn evaluate(&mut self, data: &Dataset, views: &[Augment]) -> Result<Evaluation> {
        self.infer().evaluate(data, views)
    }

    /// Class probabilities of `indices` of `data` (no augmentation), `[n, classes]`.
    pub fn probabilities(&mut self, data: &Dataset, indices: &[usize]) -> Result<Array2<f32>> {
        self.infer().augmented_probabilities(data, indices, &[])
    }

    /// Class probabilities of normalised `inputs` `[n, c, h, w]`, `[n, classes]`.
    pub fn probabilities_of(&mut self, inputs: ArrayView4<f32>) -> Result<Array2<f32>> {
        self.infer().probabilities_of(inputs)
    }

    /// The gradient of logit `class` with respect to a normalised input `[c, h, w]`.
    pub fn logit_gradient(&mut self, input: ArrayView3<f32>, class: usize) -> Result<Array3<f32>> {
        self.infer().logit_gradient(input, class)
    }

    /// Every point of the network for a normalised input `[c, h, w]` (see
    /// [`Inference::trace`]).
    pub fn trace(&mut self, input: ArrayView3<f32>, class: usize) -> Result<Vec<TracePoint>> {
        self.infer().trace(input, class)
    }
}

/// Refuses the network `spec` (from `source`, named in the error) unless it takes CIFAR-10
/// images to the 10 classes and `threads` workers of [`EVAL_CHUNK`] examples fit the memory
/// budget.
fn check_fits(spec: &[LayerSpec], threads: usize, source: &Path) -> Result<()> {
    let named = |e: Error| match e {
        Error::Arch(why) => Error::Arch(format!("{}: {why}", source.display())),
        other => other,
    };
    crate::arch::check_cifar10(spec).map_err(named)?;
    Footprint::estimate(spec, threads, EVAL_CHUNK, 0, false)?.check(
        default_budget(),
        "lower --threads or use a smaller architecture",
    )
}
