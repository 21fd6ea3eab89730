//! Writes the study's reference data for its numpy peer (`scripts/numpy_layers.py`): for every
//! case of [`SEED_NETWORK`] at every batch of [`TABLE_BATCHES`], the deterministic random
//! inputs the benchmarks use ([`Layer::arrays`]) and the outputs of the naive (reference)
//! technique, run through the kernels' public dispatch ([`Prepared::run`], the same calls the
//! benchmarks time), as `.npy` files, and `manifest.json`, which lists every file with its
//! shape and meaning, and the conventions the numpy side must match.
//!
//! Usage: `cargo run -p study --release --bin exchange -- --out DIR`. Files are
//! `DIR/<case>/b<batch>/<array>.npy`; float arrays are f32, labels i64, argmax u32.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kernels::{LEAKY_RELU_SLOPE, Technique};
use ndarray::{Array, Array0, ArrayView4, Dimension};
use ndarray_npy::{WritableElement, write_npy};
use serde::Serialize;
use serde_json::{Value, json};
use study::{
    Activation, Arrays, Case, INPUT_SEED, Layer, Pass, Prepared, SEED_NETWORK, TABLE_BATCHES, group,
};

/// The technique whose outputs are written: the reference every other is tested against.
const REFERENCE: Technique = Technique::Naive;

const USAGE: &str =
    "usage: exchange --out DIR   (writes DIR/manifest.json and DIR/<case>/b<batch>/*.npy)";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let Some(out) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let mut cases = Vec::new();
    for case in &SEED_NETWORK {
        let mut batches = Vec::new();
        for &batch in &TABLE_BATCHES {
            batches.push(write_case(&out, case, batch)?);
        }
        cases.push(CaseEntry {
            name: case.name,
            title: case.title,
            kind: kind(&case.layer),
            groups: Pass::ALL.map(|pass| group(case.name, pass)),
            params: params(&case.layer),
            batches,
        });
    }
    let manifest = Manifest {
        format: 1,
        generator: "cargo run -p study --release --bin exchange -- --out DIR (benches/exchange.rs)",
        technique: REFERENCE.name(),
        inputs: format!(
            "uniform in [-1, 1) from one StdRng seeded with {INPUT_SEED:#x}, drawn per case and \
             batch in the order x, w, bias, dy (study::Layer::arrays, the benchmarks' inputs); \
             softmax logits are such draws times 3, its labels (b * 7) mod classes"
        ),
        layout: "f32 arrays, NCHW, batch first: [b, c, h, w]; the fully connected layer [b, i]; \
                 labels i64, argmax u32",
        conventions: conventions(),
        cases,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| format!("cannot serialise the manifest: {e}"))?;
    let path = out.join("manifest.json");
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!(
        "wrote {} ({} cases × batches {:?}, technique {})",
        path.display(),
        SEED_NETWORK.len(),
        TABLE_BATCHES,
        REFERENCE.name()
    );
    Ok(())
}

/// The output directory from `--out DIR` (or `--out=DIR`); `None` for `--help`.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<PathBuf>, String> {
    let mut out = None;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--out" => match args.next() {
                Some(dir) if !dir.is_empty() && !dir.starts_with("--") => {
                    out = Some(PathBuf::from(dir))
                }
                _ => return Err(format!("--out needs a directory ({USAGE})")),
            },
            _ => match arg.strip_prefix("--out=") {
                Some(dir) if !dir.is_empty() => out = Some(PathBuf::from(dir)),
                Some(_) => return Err(format!("--out needs a directory ({USAGE})")),
                None => return Err(format!("unknown argument {arg:?} ({USAGE})")),
            },
        }
    }
    out.map(Some)
        .ok_or_else(|| format!("--out DIR is required ({USAGE})"))
}

/// The manifest: what was written, and the conventions the numpy side must match.
#[derive(Serialize)]
struct Manifest {
    format: u32,
    generator: &'static str,
    technique: &'static str,
    inputs: String,
    layout: &'static str,
    conventions: Value,
    cases: Vec<CaseEntry>,
}

/// One case of the seed network: its shape parameters and its files at each batch.
#[derive(Serialize)]
struct CaseEntry {
    name: &'static str,
    title: &'static str,
    kind: &'static str,
    /// The criterion groups of its forward and backward passes (`conv1/forward`, …).
    groups: [String; 2],
    params: Value,
    batches: Vec<BatchEntry>,
}

/// One case at one batch size.
#[derive(Serialize)]
struct BatchEntry {
    batch: usize,
    /// Every array by name (`x`, `w`, `dy`, `y`, `dx`, …).
    arrays: BTreeMap<&'static str, ArrayEntry>,
    /// Facts about this data that a convention depends on (pooling ties, zeros after ReLU).
    facts: BTreeMap<&'static str, usize>,
}

/// One `.npy` file.
#[derive(Serialize)]
struct ArrayEntry {
    /// Path relative to the manifest's directory.
    file: String,
    shape: Vec<usize>,
    dtype: &'static str,
    /// `input`, `forward output` or `backward output`.
    role: &'static str,
    meaning: &'static str,
}

const INPUT: &str = "input";
const FORWARD: &str = "forward output";
const BACKWARD: &str = "backward output";

/// Collects the arrays of one case at one batch into `DIR/<case>/b<batch>/`.
struct Writer<'a> {
    root: &'a Path,
    dir: String,
    arrays: BTreeMap<&'static str, ArrayEntry>,
}

impl Writer<'_> {
    /// Writes `array` (any shape, listed as it is) as `<name>.npy`.
    fn put<A: WritableElement, D: Dimension>(
        &mut self,
        name: &'static str,
        array: &Array<A, D>,
        role: &'static str,
        meaning: &'static str,
    ) -> Result<(), String> {
        let file = format!("{}/{name}.npy", self.dir);
        let path = self.root.join(&file);
        write_npy(&path, array).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.arrays.insert(
            name,
            ArrayEntry {
                file,
                shape: array.shape().to_vec(),
                dtype: dtype::<A>(),
                role,
                meaning,
            },
        );
        Ok(())
    }
}

/// numpy's name of the element types written here.
fn dtype<A>() -> &'static str {
    match std::any::type_name::<A>() {
        "f32" => "float32",
        "u32" => "uint32",
        "i64" => "int64",
        other => other,
    }
}

/// Runs the reference technique's forward and backward passes on `case` at `batch` and
/// writes its inputs and outputs; shapes as [`Arrays`] (`[b, c, h, w]` for images).
fn write_case(root: &Path, case: &Case, batch: usize) -> Result<BatchEntry, String> {
    let dir = format!("{}/b{batch}", case.name);
    std::fs::create_dir_all(root.join(&dir))
        .map_err(|e| format!("cannot create {}: {e}", root.join(&dir).display()))?;
    let mut prepared = Prepared::new(case.layer.arrays(batch), REFERENCE)
        .map_err(|e| format!("{} at batch {batch}: {e}", case.name))?;
    for pass in Pass::ALL {
        prepared
            .run(pass)
            .map_err(|e| format!("{} at batch {batch}: {e}", group(case.name, pass)))?;
    }
    let mut w = Writer {
        root,
        dir,
        arrays: BTreeMap::new(),
    };
    let mut facts = BTreeMap::new();
    match &prepared.arrays {
        Arrays::Conv {
            x,
            w: filters,
            bias,
            dy,
            y,
            dx,
            dw,
            dbias,
            ..
        } => {
            w.put("x", x, INPUT, "input images [b, c, h, w]")?;
            w.put("w", filters, INPUT, "filters [d, c, k, k]")?;
            w.put("bias", bias, INPUT, "bias [d]")?;
            w.put("dy", dy, INPUT, "upstream gradient dL/dy [b, d, h2, w2]")?;
            w.put(
                "y",
                y,
                FORWARD,
                "y = x ⋆ w + bias [b, d, h2, w2] (cross-correlation, zero padding)",
            )?;
            w.put("dx", dx, BACKWARD, "dL/dx [b, c, h, w]")?;
            w.put(
                "dw",
                dw,
                BACKWARD,
                "dL/dw [d, c, k, k], SUMMED over the batch and output positions (not averaged)",
            )?;
            w.put(
                "dbias",
                dbias,
                BACKWARD,
                "dL/dbias [d], dy SUMMED over the batch and output positions",
            )?;
        }
        Arrays::Pool {
            params,
            x,
            dy,
            y,
            argmax,
            dx,
        } => {
            w.put("x", x, INPUT, "input [b, c, h, w]")?;
            w.put("dy", dy, INPUT, "upstream gradient dL/dy [b, c, h2, w2]")?;
            w.put("y", y, FORWARD, "window maxima [b, c, h2, w2]")?;
            w.put("argmax", argmax, FORWARD, "flat index row * w + col in the input plane of each window's first maximum (row-major) [b, c, h2, w2]; not compared by numpy (the seed computes none)")?;
            w.put(
                "dx",
                dx,
                BACKWARD,
                "dL/dx [b, c, h, w]: each dy added at its window's first maximum, zero elsewhere",
            )?;
            facts.insert(
                "windows_with_tied_maximum",
                tied_windows(x.view(), params.size, params.stride),
            );
        }
        Arrays::Fc {
            x,
            w: weights,
            bias,
            dy,
            y,
            dx,
            dw,
            dbias,
        } => {
            w.put(
                "x",
                x,
                INPUT,
                "input [b, i]: pool3's output [b, 20, 4, 4] flattened in (c, h, w) order",
            )?;
            w.put("w", weights, INPUT, "weights [o, i]")?;
            w.put("bias", bias, INPUT, "bias [o]")?;
            w.put("dy", dy, INPUT, "upstream gradient dL/dy [b, o]")?;
            w.put("y", y, FORWARD, "y = x · wᵀ + bias [b, o]")?;
            w.put("dx", dx, BACKWARD, "dL/dx = dy · w [b, i]")?;
            w.put(
                "dw",
                dw,
                BACKWARD,
                "dL/dw = dyᵀ · x [o, i], SUMMED over the batch (not averaged)",
            )?;
            w.put(
                "dbias",
                dbias,
                BACKWARD,
                "dL/dbias [o], dy SUMMED over the batch",
            )?;
        }
        Arrays::Activation {
            function,
            x,
            dy,
            y,
            dx,
        } => {
            w.put("x", x, INPUT, "input [b, c, h, w]")?;
            w.put("dy", dy, INPUT, "upstream gradient dL/dy [b, c, h, w]")?;
            match function {
                Activation::LeakyRelu => {
                    w.put("y", y, FORWARD, "y = max(x, 0.01 x) [b, c, h, w]")?;
                    w.put(
                        "dx",
                        dx,
                        BACKWARD,
                        "dx = dy where y > 0, else 0.01 dy [b, c, h, w] (computed from y)",
                    )?;
                    facts.insert("zeros_in_y", y.iter().filter(|&&v| v == 0.0).count());
                }
                Activation::Sigmoid => {
                    w.put("y", y, FORWARD, "y = 1 / (1 + exp(-x)) [b, c, h, w]")?;
                    w.put(
                        "dx",
                        dx,
                        BACKWARD,
                        "dx = dy · y · (1 − y) [b, c, h, w] (computed from y)",
                    )?;
                }
            }
        }
        Arrays::Softmax {
            logits,
            labels,
            probs,
            loss,
            dlogits,
        } => {
            w.put("logits", logits, INPUT, "logits [b, k]")?;
            let labels = labels.mapv(|l| l as i64);
            w.put("labels", &labels, INPUT, "class labels [b], each below k")?;
            w.put("probs", probs, FORWARD, "softmax of each row [b, k]")?;
            let loss: Array0<f32> = Array0::from_elem((), *loss);
            w.put(
                "loss",
                &loss,
                FORWARD,
                "cross-entropy loss, the MEAN over the batch of -ln probs[label] (a 0-d array)",
            )?;
            w.put(
                "dlogits",
                dlogits,
                BACKWARD,
                "dL/dlogits of the mean loss = (probs − onehot(labels)) / b [b, k]",
            )?;
        }
    }
    Ok(BatchEntry {
        batch,
        arrays: w.arrays,
        facts,
    })
}

/// Windows of x `[b, c, h, w]` (`size × size`, step `stride`) whose maximum occurs more than
/// once: where the tie rule decides the gradient's place.
fn tied_windows(x: ArrayView4<f32>, size: usize, stride: usize) -> usize {
    let (nb, nc, h, w) = x.dim();
    let mut ties = 0;
    for b in 0..nb {
        for c in 0..nc {
            for i in 0..(h - size) / stride + 1 {
                for j in 0..(w - size) / stride + 1 {
                    let window = x.slice(ndarray::s![
                        b,
                        c,
                        i * stride..i * stride + size,
                        j * stride..j * stride + size
                    ]);
                    let max = window.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    if window.iter().filter(|&&v| v == max).count() > 1 {
                        ties += 1;
                    }
                }
            }
        }
    }
    ties
}

/// The kind of layer, as the numpy side dispatches on it: `conv`, `pool`, `fc`,
/// `leaky_relu`, `sigmoid` or `softmax`.
fn kind(layer: &Layer) -> &'static str {
    match layer {
        Layer::LeakyRelu { .. } => "leaky_relu",
        Layer::Sigmoid { .. } => "sigmoid",
        other => other.kind(),
    }
}

/// A layer's shape parameters, per example.
fn params(layer: &Layer) -> Value {
    match *layer {
        Layer::Conv {
            c,
            h,
            w,
            d,
            k,
            stride,
            pad,
        } => json!({"c": c, "h": h, "w": w, "d": d, "k": k, "stride": stride, "pad": pad}),
        Layer::Pool {
            c,
            h,
            w,
            size,
            stride,
        } => json!({"c": c, "h": h, "w": w, "size": size, "stride": stride}),
        Layer::Fc { inputs, outputs } => json!({"inputs": inputs, "outputs": outputs}),
        Layer::LeakyRelu { shape } | Layer::Sigmoid { shape } => json!({"shape": shape}),
        Layer::Softmax { classes } => json!({"classes": classes}),
    }
}

/// The Rust kernels' conventions, machine-readable (the numpy side asserts the keys it
/// depends on) and in words.
fn conventions() -> Value {
    json!({
        "conv": {
            "operation": "cross-correlation",
            "weight_gradient": "sum",
            "bias_gradient": "sum",
            "text": "y[b,d,i,j] = bias[d] + sum over c, ki, kj of w[d,c,ki,kj] * x_padded[b,c,i*s+ki,j*s+kj] (no kernel flip, zero padding); dw and dbias are SUMS over the batch and the output positions, not means (the seed's back() divides by H*W*B, a step of its update, not part of the gradient); dx is the full input gradient, computed for every layer here (conv1 too)"
        },
        "fc": {
            "weight_gradient": "sum",
            "bias_gradient": "sum",
            "flatten": "c, h, w",
            "text": "y = x · wᵀ + bias with x [b, i], w [o, i]; dw = dyᵀ · x and dbias = sum of dy over the batch (SUMS, not means); the seed's weights [D, H, W, D1, H1, W1] = [1, 1, 10, 20, 4, 4] are w reshaped, row-major"
        },
        "pool": {
            "tie_rule": "first maximum in row-major order",
            "argmax": "row * w + col",
            "text": "max over each size x size window at step stride, no padding; the backward adds dy to the first maximum of its window in row-major order (a later tap replaces the running maximum only if strictly greater), zero elsewhere; see facts.windows_with_tied_maximum: where it is 0, every rule of routing to a maximum agrees"
        },
        "leaky_relu": {
            "slope": LEAKY_RELU_SLOPE,
            "backward_reads": "y",
            "gradient_at_zero": "slope",
            "text": "y = max(x, 0.01 x); dx = dy where y > 0, else 0.01 dy (y == 0 takes the slope; see facts.zeros_in_y)"
        },
        "sigmoid": {
            "backward_reads": "y",
            "text": "y = 1 / (1 + exp(-x)); dx = dy * y * (1 - y)"
        },
        "softmax": {
            "loss": "mean",
            "dlogits": "(probs - onehot) / b",
            "text": "probs = softmax of each row (its maximum subtracted first); loss = mean over the batch of -ln probs[b, label[b]]; dlogits = (probs - onehot(labels)) / b, the gradient of that mean (the seed's term is onehot - probs: the opposite sign, not divided by b)"
        },
        "backward_inputs": "each backward pass reads the inputs (x, w, dy, labels) and, where it needs them, the forward outputs of the same directory (pooling's argmax, the activations' y, the softmax probs)"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(args(&["--out", "d"])), Ok(Some("d".into())));
        assert_eq!(parse_args(args(&["--out=d"])), Ok(Some("d".into())));
        assert_eq!(parse_args(args(&["--help"])), Ok(None));
        for bad in [
            &[][..],
            &["--out"],
            &["--out="],
            &["--out", "--x"],
            &["d"],
            &["--bogus"],
        ] {
            let err = parse_args(args(bad)).expect_err("bad arguments");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn files_read_back_as_listed() {
        let root = std::env::temp_dir().join(format!("exchange-test-{}", std::process::id()));
        for name in ["fc", "softmax", "pool3"] {
            let case = study::seed_case(name).expect("a seed case");
            let entry = write_case(&root, case, 5).expect("written");
            for (array, meta) in &entry.arrays {
                let path = root.join(&meta.file);
                let shape = match meta.dtype {
                    "float32" => ndarray_npy::read_npy::<_, ndarray::ArrayD<f32>>(&path)
                        .map(|a| a.shape().to_vec()),
                    "uint32" => ndarray_npy::read_npy::<_, ndarray::ArrayD<u32>>(&path)
                        .map(|a| a.shape().to_vec()),
                    "int64" => ndarray_npy::read_npy::<_, ndarray::ArrayD<i64>>(&path)
                        .map(|a| a.shape().to_vec()),
                    other => panic!("{array}: unexpected dtype {other}"),
                }
                .expect("readable");
                assert_eq!(shape, meta.shape, "{name}/{array}");
            }
        }
        // The softmax's gradient as written is (probs − onehot) / b.
        let dir = root.join("softmax/b5");
        let read = |f: &str| {
            ndarray_npy::read_npy::<_, ndarray::Array2<f32>>(dir.join(f)).expect("readable")
        };
        let labels: ndarray::Array1<i64> =
            ndarray_npy::read_npy(dir.join("labels.npy")).expect("readable");
        let (probs, dlogits) = (read("probs.npy"), read("dlogits.npy"));
        for ((b, c), &g) in dlogits.indexed_iter() {
            let target = if labels[b] == c as i64 { 1.0 } else { 0.0 };
            assert!((g - (probs[[b, c]] - target) / 5.0).abs() < 1e-6);
        }
        std::fs::remove_dir_all(&root).expect("cleaned up");
    }

    #[test]
    fn ties_are_counted() {
        let mut x = Array4::<f32>::zeros((1, 1, 2, 4));
        x[[0, 0, 0, 2]] = 1.0;
        // Window 0 is all zeros (tied); window 1 has a single maximum.
        assert_eq!(tied_windows(x.view(), 2, 2), 1);
    }
}
