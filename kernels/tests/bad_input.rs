//! Bad input gets a `KernelError` naming the layer and the shapes, in every technique:
//! mismatched shapes, empty dimensions, windows larger than the padded input, stride 0,
//! labels past the classes, corrupt argmax.

use kernels::*;
use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};

/// Runs `call` with every technique and checks each error's kind and that its message holds
/// every one of `needles`.
fn assert_rejected(
    case: &str,
    kind: fn(&KernelError) -> bool,
    needles: &[&str],
    mut call: impl FnMut(Technique) -> Result<()>,
) {
    for t in Technique::ALL {
        let err = call(t).expect_err(&format!("{case} ({t}) was accepted"));
        let message = err.to_string();
        assert!(kind(&err), "{case} ({t}): wrong kind of error: {message}");
        for needle in needles {
            assert!(
                message.contains(needle),
                "{case} ({t}): {message:?} lacks {needle:?}"
            );
        }
    }
}

fn shape(e: &KernelError) -> bool {
    matches!(e, KernelError::ShapeMismatch { .. })
}

fn argument(e: &KernelError) -> bool {
    matches!(e, KernelError::InvalidArgument { .. })
}

fn conv_forward(
    t: Technique,
    stride: usize,
    padding: usize,
    x: [usize; 4],
    w: [usize; 4],
    nbias: usize,
    y: [usize; 4],
) -> Result<()> {
    let p = Conv2dParams { stride, padding };
    let (x, w, bias) = (
        Array4::<f32>::zeros(x),
        Array4::<f32>::zeros(w),
        Array1::<f32>::zeros(nbias),
    );
    let mut y = Array4::<f32>::zeros(y);
    conv2d_forward(
        t,
        &p,
        x.view(),
        w.view(),
        bias.view(),
        y.view_mut(),
        &mut Scratch::new(),
    )
}

fn conv_backward(
    t: Technique,
    x: [usize; 4],
    w: [usize; 4],
    dy: [usize; 4],
    dx: [usize; 4],
    dw: [usize; 4],
    nbias: usize,
) -> Result<()> {
    let p = Conv2dParams {
        stride: 1,
        padding: 1,
    };
    let (x, w, dy) = (
        Array4::<f32>::zeros(x),
        Array4::<f32>::zeros(w),
        Array4::<f32>::zeros(dy),
    );
    let (mut dx, mut dw, mut dbias) = (Array4::zeros(dx), Array4::zeros(dw), Array1::zeros(nbias));
    conv2d_backward(
        t,
        &p,
        x.view(),
        w.view(),
        dy.view(),
        Some(dx.view_mut()),
        dw.view_mut(),
        dbias.view_mut(),
        &mut Scratch::new(),
    )
}

#[test]
fn conv_rejects_bad_input() {
    let ok_x = [2, 3, 8, 8];
    let ok_w = [4, 3, 3, 3];
    let ok_y = [2, 4, 8, 8];
    assert_rejected(
        "weights for other channels",
        shape,
        &[
            "conv2d forward",
            "[4, 2, 3, 3]",
            "[2, 3, 8, 8]",
            "input channels",
        ],
        |t| conv_forward(t, 1, 1, ok_x, [4, 2, 3, 3], 4, ok_y),
    );
    assert_rejected(
        "wrong y",
        shape,
        &[
            "conv2d forward",
            "y has shape [2, 4, 7, 8]",
            "expected [2, 4, 8, 8]",
        ],
        |t| conv_forward(t, 1, 1, ok_x, ok_w, 4, [2, 4, 7, 8]),
    );
    assert_rejected(
        "wrong bias",
        shape,
        &["conv2d forward", "bias has shape [3]", "expected [4]"],
        |t| conv_forward(t, 1, 1, ok_x, ok_w, 3, ok_y),
    );
    assert_rejected(
        "empty batch",
        argument,
        &["conv2d forward", "[0, 3, 8, 8]", "empty"],
        |t| conv_forward(t, 1, 1, [0, 3, 8, 8], ok_w, 4, [0, 4, 8, 8]),
    );
    assert_rejected("no filters", argument, &["conv2d forward", "empty"], |t| {
        conv_forward(t, 1, 1, ok_x, [0, 3, 3, 3], 0, [2, 0, 8, 8])
    });
    assert_rejected(
        "window past the padded input",
        argument,
        &[
            "conv2d forward",
            "5×5",
            "larger than the padded input 4×4",
            "[1, 1, 2, 2]",
        ],
        |t| conv_forward(t, 1, 1, [1, 1, 2, 2], [1, 1, 5, 5], 1, [1, 1, 1, 1]),
    );
    assert_rejected(
        "stride 0",
        argument,
        &["conv2d forward", "stride is 0"],
        |t| conv_forward(t, 0, 1, ok_x, ok_w, 4, ok_y),
    );
    assert_rejected(
        "dy of another shape",
        shape,
        &[
            "conv2d backward",
            "dy has shape [2, 4, 6, 6]",
            "expected [2, 4, 8, 8]",
        ],
        |t| conv_backward(t, ok_x, ok_w, [2, 4, 6, 6], ok_x, ok_w, 4),
    );
    assert_rejected(
        "dx of another shape",
        shape,
        &["conv2d backward", "dx has shape [2, 3, 8, 9]"],
        |t| conv_backward(t, ok_x, ok_w, ok_y, [2, 3, 8, 9], ok_w, 4),
    );
    assert_rejected(
        "dw of another shape",
        shape,
        &["conv2d backward", "dw has shape [4, 3, 3, 2]"],
        |t| conv_backward(t, ok_x, ok_w, ok_y, ok_x, [4, 3, 3, 2], 4),
    );
    assert_rejected(
        "dbias of another length",
        shape,
        &["conv2d backward", "dbias has shape [5]"],
        |t| conv_backward(t, ok_x, ok_w, ok_y, ok_x, ok_w, 5),
    );
    assert!(
        Conv2dParams {
            stride: 1,
            padding: 0
        }
        .output_shape(&[1, 3, 32], &[1, 3, 3, 3])
        .is_err()
    );
}

/// A test of an error's kind.
type ErrorKind = fn(&KernelError) -> bool;

/// The fused inference pass (the direct kernels, no technique) refuses what the layers apart
/// refuse, each error naming it and the shapes.
#[test]
fn conv_relu_pool_rejects_bad_input() {
    let run = |x: [usize; 4], w: [usize; 4], nbias: usize, (size, stride), y: [usize; 4]| {
        let (x, w, bias) = (Array4::zeros(x), Array4::zeros(w), Array1::zeros(nbias));
        let mut y = Array4::<f32>::zeros(y);
        conv2d_leaky_relu_pool_forward(
            &Conv2dParams {
                stride: 1,
                padding: 1,
            },
            &Pool2dParams { size, stride },
            x.view(),
            w.view(),
            bias.view(),
            y.view_mut(),
            &mut Scratch::new(),
        )
    };
    let (x, w, y) = ([2, 3, 8, 8], [4, 3, 3, 3], [2, 4, 4, 4]);
    assert!(run(x, w, 4, (2, 2), y).is_ok());
    let cases: [(&str, ErrorKind, &[&str], Result<()>); 5] = [
        (
            "y unpooled",
            shape,
            &["y has shape [2, 4, 8, 8]", "expected [2, 4, 4, 4]"],
            run(x, w, 4, (2, 2), [2, 4, 8, 8]),
        ),
        (
            "wrong bias",
            shape,
            &["bias has shape [3]", "expected [4]"],
            run(x, w, 4 - 1, (2, 2), y),
        ),
        (
            "weights for other channels",
            shape,
            &["[4, 2, 3, 3]", "input channels"],
            run(x, [4, 2, 3, 3], 4, (2, 2), y),
        ),
        (
            "window past the convolution's output",
            argument,
            &["9×9", "[2, 4, 8, 8]"],
            run(x, w, 4, (9, 1), [2, 4, 1, 1]),
        ),
        (
            "pool stride 0",
            argument,
            &["stride is 0"],
            run(x, w, 4, (2, 0), y),
        ),
    ];
    for (case, kind, needles, result) in cases {
        let err = result.expect_err(case);
        let message = err.to_string();
        assert!(kind(&err), "{case}: wrong kind of error: {message}");
        for needle in ["conv2d + leaky_relu + max_pool2d forward"]
            .iter()
            .chain(needles)
        {
            assert!(
                message.contains(needle),
                "{case}: {message:?} lacks {needle:?}"
            );
        }
    }
}

fn pool_forward(
    t: Technique,
    size: usize,
    stride: usize,
    x: [usize; 4],
    y: [usize; 4],
    argmax: [usize; 4],
) -> Result<()> {
    let p = Pool2dParams { size, stride };
    let x = Array4::<f32>::zeros(x);
    let (mut y, mut argmax) = (Array4::<f32>::zeros(y), Array4::<u32>::zeros(argmax));
    max_pool2d_forward(
        t,
        &p,
        x.view(),
        y.view_mut(),
        argmax.view_mut(),
        &mut Scratch::new(),
    )
}

fn pool_backward(t: Technique, dy: [usize; 4], argmax: Array4<u32>, dx: [usize; 4]) -> Result<()> {
    let p = Pool2dParams { size: 2, stride: 2 };
    let dy = Array4::<f32>::zeros(dy);
    let mut dx = Array4::<f32>::zeros(dx);
    max_pool2d_backward(
        t,
        &p,
        dy.view(),
        argmax.view(),
        dx.view_mut(),
        &mut Scratch::new(),
    )
}

#[test]
fn pool_rejects_bad_input() {
    assert_rejected(
        "stride 0",
        argument,
        &["max_pool2d forward", "stride is 0"],
        |t| pool_forward(t, 2, 0, [1, 2, 4, 4], [1, 2, 2, 2], [1, 2, 2, 2]),
    );
    assert_rejected(
        "window past the input",
        argument,
        &[
            "max_pool2d forward",
            "3×3",
            "larger than the padded input 2×5",
        ],
        |t| pool_forward(t, 3, 1, [1, 2, 2, 5], [1, 2, 1, 3], [1, 2, 1, 3]),
    );
    assert_rejected(
        "empty channels",
        argument,
        &["max_pool2d forward", "[1, 0, 4, 4]"],
        |t| pool_forward(t, 2, 2, [1, 0, 4, 4], [1, 0, 2, 2], [1, 0, 2, 2]),
    );
    assert_rejected(
        "window of size 0",
        argument,
        &["max_pool2d forward", "0×0"],
        |t| pool_forward(t, 0, 1, [1, 1, 4, 4], [1, 1, 4, 4], [1, 1, 4, 4]),
    );
    assert_rejected(
        "wrong y",
        shape,
        &[
            "max_pool2d forward",
            "y has shape [1, 2, 3, 2]",
            "expected [1, 2, 2, 2]",
        ],
        |t| pool_forward(t, 2, 2, [1, 2, 4, 4], [1, 2, 3, 2], [1, 2, 2, 2]),
    );
    assert_rejected(
        "wrong argmax",
        shape,
        &["max_pool2d forward", "argmax has shape [1, 2, 2, 1]"],
        |t| pool_forward(t, 2, 2, [1, 2, 4, 4], [1, 2, 2, 2], [1, 2, 2, 1]),
    );
    assert_rejected(
        "dy of another shape",
        shape,
        &[
            "max_pool2d backward",
            "dy has shape [1, 2, 3, 3]",
            "expected [1, 2, 2, 2]",
        ],
        |t| pool_backward(t, [1, 2, 3, 3], Array4::zeros((1, 2, 2, 2)), [1, 2, 4, 4]),
    );
    // Output (0, 0, 1, 1) covers rows and columns 2..4 of a 4×4 plane; 5 is (1, 1).
    let mut corrupt = Array4::from_shape_vec((1, 1, 2, 2), vec![0, 2, 8, 10]).unwrap();
    corrupt[[0, 0, 1, 1]] = 5;
    assert_rejected(
        "argmax outside its window",
        argument,
        &[
            "max_pool2d backward",
            "argmax[0, 0, 1, 1] = 5",
            "outside its window",
        ],
        |t| pool_backward(t, [1, 1, 2, 2], corrupt.clone(), [1, 1, 4, 4]),
    );
    corrupt[[0, 0, 1, 1]] = 1000;
    assert_rejected(
        "argmax past the plane",
        argument,
        &["argmax[0, 0, 1, 1] = 1000"],
        |t| pool_backward(t, [1, 1, 2, 2], corrupt.clone(), [1, 1, 4, 4]),
    );
}

fn fc(t: Technique, x: [usize; 2], w: [usize; 2], nbias: usize, y: [usize; 2]) -> Result<()> {
    let (x, w, bias) = (
        Array2::<f32>::zeros(x),
        Array2::<f32>::zeros(w),
        Array1::<f32>::zeros(nbias),
    );
    let mut y = Array2::<f32>::zeros(y);
    fc_forward(
        t,
        x.view(),
        w.view(),
        bias.view(),
        y.view_mut(),
        &mut Scratch::new(),
    )
}

fn fc_back(t: Technique, dy: [usize; 2], dx: [usize; 2], dw: [usize; 2]) -> Result<()> {
    let (x, w, dy) = (
        Array2::<f32>::zeros((2, 5)),
        Array2::<f32>::zeros((3, 5)),
        Array2::<f32>::zeros(dy),
    );
    let (mut dx, mut dw, mut dbias) = (Array2::zeros(dx), Array2::zeros(dw), Array1::zeros(3));
    fc_backward(
        t,
        x.view(),
        w.view(),
        dy.view(),
        dx.view_mut(),
        dw.view_mut(),
        dbias.view_mut(),
        &mut Scratch::new(),
    )
}

#[test]
fn fc_rejects_bad_input() {
    assert_rejected(
        "weights for other inputs",
        shape,
        &["fc forward", "w [3, 4] expects 4 inputs", "x [2, 5] has 5"],
        |t| fc(t, [2, 5], [3, 4], 3, [2, 3]),
    );
    assert_rejected(
        "wrong y",
        shape,
        &["fc forward", "y has shape [2, 4]", "expected [2, 3]"],
        |t| fc(t, [2, 5], [3, 5], 3, [2, 4]),
    );
    assert_rejected(
        "wrong bias",
        shape,
        &["fc forward", "bias has shape [2]"],
        |t| fc(t, [2, 5], [3, 5], 2, [2, 3]),
    );
    assert_rejected(
        "empty input",
        argument,
        &["fc forward", "x has shape [2, 0]"],
        |t| fc(t, [2, 0], [3, 0], 3, [2, 3]),
    );
    assert_rejected(
        "no outputs",
        argument,
        &["fc forward", "w has shape [0, 5]"],
        |t| fc(t, [2, 5], [0, 5], 0, [2, 0]),
    );
    assert_rejected(
        "dy of another shape",
        shape,
        &["fc backward", "dy has shape [2, 4]", "expected [2, 3]"],
        |t| fc_back(t, [2, 4], [2, 5], [3, 5]),
    );
    assert_rejected(
        "dx of another shape",
        shape,
        &["fc backward", "dx has shape [5, 2]"],
        |t| fc_back(t, [2, 3], [5, 2], [3, 5]),
    );
    assert_rejected(
        "dw of another shape",
        shape,
        &["fc backward", "dw has shape [3, 4]"],
        |t| fc_back(t, [2, 3], [2, 5], [3, 4]),
    );
}

#[test]
fn flatten_needs_a_standard_layout() {
    let x = Array4::<f32>::zeros((2, 3, 4, 5));
    assert_eq!(flatten(x.view()).unwrap().shape(), &[2, 60]);
    let permuted = x.view().permuted_axes([0, 2, 1, 3]);
    let err = flatten(permuted).unwrap_err().to_string();
    assert!(
        err.contains("flatten") && err.contains("[2, 4, 3, 5]"),
        "{err}"
    );
}

#[test]
fn activations_reject_mismatched_shapes() {
    let x = ArrayD::<f32>::zeros(IxDyn(&[2, 3]));
    let mut y = ArrayD::<f32>::zeros(IxDyn(&[3, 2]));
    assert_rejected(
        "relu forward",
        shape,
        &[
            "leaky_relu forward",
            "y has shape [3, 2]",
            "expected [2, 3]",
        ],
        |t| leaky_relu_forward(t, x.view(), y.view_mut()),
    );
    assert_rejected(
        "sigmoid forward",
        shape,
        &["sigmoid forward", "y has shape [3, 2]"],
        |t| sigmoid_forward(t, x.view(), y.view_mut()),
    );
    let dy = ArrayD::<f32>::zeros(IxDyn(&[2, 2]));
    assert_rejected(
        "relu backward",
        shape,
        &["leaky_relu backward", "dy has shape [2, 2]"],
        |t| leaky_relu_backward(t, x.view(), dy.view(), y.view_mut()),
    );
    assert_rejected(
        "sigmoid backward",
        shape,
        &["sigmoid backward", "dx has shape [3, 2]"],
        |t| sigmoid_backward(t, x.view(), x.view(), y.view_mut()),
    );
}

#[test]
fn softmax_rejects_bad_input() {
    let logits = Array2::<f32>::zeros((3, 10));
    let forward = |t, logits: &Array2<f32>, labels: Vec<usize>, probs: (usize, usize)| {
        let mut probs = Array2::<f32>::zeros(probs);
        softmax_cross_entropy_forward(
            t,
            logits.view(),
            Array1::from(labels).view(),
            probs.view_mut(),
            &mut Scratch::new(),
        )
        .map(drop)
    };
    assert_rejected(
        "label past the classes",
        argument,
        &[
            "softmax_cross_entropy forward",
            "label 10 at batch index 2",
            "10 classes",
        ],
        |t| forward(t, &logits, vec![0, 9, 10], (3, 10)),
    );
    assert_rejected(
        "labels for another batch",
        shape,
        &["softmax_cross_entropy forward", "2 labels for a batch of 3"],
        |t| forward(t, &logits, vec![0, 1], (3, 10)),
    );
    assert_rejected(
        "wrong probs",
        shape,
        &["softmax_cross_entropy forward", "probs has shape [3, 9]"],
        |t| forward(t, &logits, vec![0, 1, 2], (3, 9)),
    );
    assert_rejected(
        "no classes",
        argument,
        &["softmax_cross_entropy forward", "[3, 0]"],
        |t| forward(t, &Array2::zeros((3, 0)), vec![0, 0, 0], (3, 0)),
    );
    assert_rejected(
        "backward label past the classes",
        argument,
        &["softmax_cross_entropy backward", "label 12"],
        |t| {
            let mut d = Array2::<f32>::zeros((3, 10));
            softmax_cross_entropy_backward(
                t,
                logits.view(),
                Array1::from(vec![12, 0, 0]).view(),
                d.view_mut(),
            )
        },
    );
    assert_rejected(
        "backward dlogits",
        shape,
        &[
            "softmax_cross_entropy backward",
            "dlogits has shape [10, 3]",
        ],
        |t| {
            let mut d = Array2::<f32>::zeros((10, 3));
            softmax_cross_entropy_backward(
                t,
                logits.view(),
                Array1::from(vec![1, 0, 0]).view(),
                d.view_mut(),
            )
        },
    );
}

#[test]
fn technique_names_round_trip() {
    for t in Technique::ALL {
        assert_eq!(t.name().parse::<Technique>(), Ok(t));
    }
    let err = "einsum".parse::<Technique>().unwrap_err();
    assert!(err.contains("einsum") && err.contains("im2col"), "{err}");
}
