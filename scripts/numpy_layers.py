#!/usr/bin/env python3
"""The seed's four numpy techniques, checked against the Rust kernels and timed on this machine.

For every layer and pass of the seed network (benches/cases.rs, SEED_NETWORK at batch 1 and 5),
the four techniques of part III of the seed's presentation, with the seed's own code:
  1 "naive"       every index a loop, scalar multiply-add;
  2 "per-output"  one loop per output, a whole-window np.sum(w[d] * window);
  3 "axis-reduce" reductions along axes of broadcast products, np.sum(np.sum(..., axis=...));
  4 "im2col"      one np.einsum contraction (numpy's technique 4 stands in the im2col column).
The keys are the Rust Technique::name()s. Where the seed wrote no distinct technique for a layer
the cell is null (see PLACEMENT below), never a copy of another. Then the seed's whole trainer
(its network, init and momentum update) with each technique used for every layer.

    cargo run -p study --release --bin exchange -- --out /tmp/exchange
    python3 scripts/numpy_layers.py --exchange /tmp/exchange --check-only   # CI: the check alone
    python3 scripts/numpy_layers.py --exchange /tmp/exchange --self-test    # the check can fail
    python3 scripts/numpy_layers.py --exchange /tmp/exchange --quick --out /tmp/numpy_layers.json
    python3 scripts/numpy_layers.py --exchange /tmp/exchange --out reports/numpy_layers.json

Before anything is timed, every technique's outputs are compared with the Rust naive kernels'
(the exchange directory); a mismatch ends the script with one `error:` line and exit 1. A full
run checks every cell; --check-only and --quick leave out technique 1 of conv1 and conv2 at
batch 5 (10-40 s of Python loops a cell; conv3 at batch 5 checks the same functions).

Timing: medians of time.perf_counter_ns samples of one call. A cell whose checked run took at
least 1 s is slow: that run is its first sample, then more up to 3 s and 3 samples (quick: that
run alone); other cells sample until 0.2 s (quick 0.05 s), at least 5 and at most 1000 samples.
"samples" gives each cell's count; null marks a technique the seed did not write for the layer,
0 samples (with a null median) a cell a quick run left out. The trainer trains 1000 examples
(quick 50) at batch 5 with each technique, stopping early after 150 s (quick 30 s; quick skips
technique 1, a minute a step); "seconds" are scaled to "examples", "examples_run" says how
many were trained and "measured_seconds" how long that took.
Needs python3 and numpy only. numpy computes in float64, as the seed's arrays were (its
np.zeros and np.random.randn); the Rust f32 inputs widen to float64 exactly.
"""

# Fixes to the seed's code (each also in FIXES below, written to the JSON as "fixes"; the
# self-test checks that the two lists agree). "fix:" repairs code that cannot run or computes
# something else than the seed meant; "adapt:" is what computing the Rust kernels' quantities,
# or timing them, needed.
#
# fix: names with spaces from the PDF's extraction (`pad inp`, `prev term1`, `delta bias`, `prev layer`, `padded prev out`) written with underscores
# fix: time.clock (removed in Python 3.8) replaced by time.perf_counter_ns, outside the techniques
# fix: a `+ np.einsum(...)` (bias) or `- np.transpose(...)` (pooling's maxima) that the slides put on its own line is joined to the line above; as two statements Python drops the bias and compares the window with nothing
# fix: lines the PDF moved out of their loops (FC back technique 2's prev_term2 update, conv back technique 3's delta3 update) put back in place
# fix: ReLU back's stray `</pre>` removed
# adapt: the seed's timing loops `for n in range(N)` removed: the harness repeats each call; outputs are allocated inside each technique as `np.zeros(np.shape(out1))` did
# adapt: batch B: techniques 1, 2 and 4 are the seed's batched code where it wrote one; technique 3 is its unbatched code in a loop over the batch, as the seed batched techniques 2 and 3 ("+ boucle sur B"), except pooling, whose batched technique 3 the seed wrote
# adapt: conv back technique 4 at batch B is the seed network's Convolutional.back() (part II: np.einsum at each b, h, w), the seed's own batched einsum back; the slides' batched technique 4 shows no code
# adapt: back() returns the gradients (prev_term, delta = sum over the batch, delta_bias = sum) instead of updating weights; the trainer applies the seed's momentum update to them as its back() did
# adapt: FC back techniques 1 to 3 also sum delta_bias (the slides leave out the bias there): technique 1 and 2 in their loops as the seed's conv techniques 1 and 2 do, technique 3 and 4 as np.sum(term, axis = 0) as FullyConnected.back() does
# adapt: conv padding as the seed's back() pads (np.zeros, then the input copied in the middle), inside every technique's timed call; conv prev_term cropped as back() does
# adapt: the softmax front is written from the seed's formula exp(x_j - m) / sum_k exp(x_k - m) (the presentation shows no code for it); its loss() is split: forward = output and error (the batch loss = np.sum(error) / B as train() takes it), backward = the term expect - out
# adapt: conventions: the seed's term is minus the gradient, so Rust's dlogits = -term / B; the seed's FC weights [1, 1, 10, 20, 4, 4] and bias [1, 1, 10] are Rust's [10, 320] and [10] reshaped row-major, its input [B, 20, 4, 4] Rust's [B, 320]
# adapt: pooling back compares prev_out with the forward's out (Rust's y), sending the gradient to every maximum of a window; Rust sends it to the first in row-major order, so the check requires windows_with_tied_maximum = 0 in the manifest (continuous random inputs: none)
# adapt: ReLU back's mask M[M >= 0] = 1 gives slope 1 at y == 0 where Rust gives 0.01; the check requires zeros_in_y = 0 in the manifest
# adapt: trainer: the Convolutional constructor's `rate` unpacked as speed, moment, white = rate (not shown in the presentation); prints, saving and the test set left out of the timed loop
# adapt: trainer: where a layer has no code for a technique, the seed network's own code runs (pooling front: technique 3, the network's Pooling.front(); pooling back: technique 3, the only one shown; activations and softmax: their only code)
#
# PLACEMENT of the layers the seed did not write four techniques for (absent cells are null):
#   pooling front: the seed's batched techniques 1 (np.max per output window), 2 (max over the
#     channel and window axes per example) and 3 (max over the window axes, whole batch) go in
#     naive, per-output and axis-reduce by the seed's numbering; im2col null (the seed has none).
#   pooling back: only technique 3 is shown (axis-reduce); naive, per-output, im2col null (the
#     seed timed techniques 1 and 2 but the presentation does not show their code).
#   leaky ReLU, sigmoid, softmax: the seed's one whole-array implementation goes in axis-reduce
#     (whole-batch numpy operations, as Rust's axis-reduce column for these layers); the other
#     three null.

import os

# The Rust kernels in the study run on one thread: so does numpy (set before importing it).
THREADS = 1
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(THREADS)

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from math import sqrt  # noqa: E402

import numpy as np  # noqa: E402

FIXES = [
    "fix: names with spaces from the PDF's extraction (`pad inp`, `prev term1`, `delta bias`, `prev layer`, `padded prev out`) written with underscores",
    "fix: time.clock (removed in Python 3.8) replaced by time.perf_counter_ns, outside the techniques",
    "fix: a `+ np.einsum(...)` (bias) or `- np.transpose(...)` (pooling's maxima) that the slides put on its own line is joined to the line above; as two statements Python drops the bias and compares the window with nothing",
    "fix: lines the PDF moved out of their loops (FC back technique 2's prev_term2 update, conv back technique 3's delta3 update) put back in place",
    "fix: ReLU back's stray `</pre>` removed",
    "adapt: the seed's timing loops `for n in range(N)` removed: the harness repeats each call; outputs are allocated inside each technique as `np.zeros(np.shape(out1))` did",
    "adapt: batch B: techniques 1, 2 and 4 are the seed's batched code where it wrote one; technique 3 is its unbatched code in a loop over the batch, as the seed batched techniques 2 and 3 (\"+ boucle sur B\"), except pooling, whose batched technique 3 the seed wrote",
    "adapt: conv back technique 4 at batch B is the seed network's Convolutional.back() (part II: np.einsum at each b, h, w), the seed's own batched einsum back; the slides' batched technique 4 shows no code",
    "adapt: back() returns the gradients (prev_term, delta = sum over the batch, delta_bias = sum) instead of updating weights; the trainer applies the seed's momentum update to them as its back() did",
    "adapt: FC back techniques 1 to 3 also sum delta_bias (the slides leave out the bias there): technique 1 and 2 in their loops as the seed's conv techniques 1 and 2 do, technique 3 and 4 as np.sum(term, axis = 0) as FullyConnected.back() does",
    "adapt: conv padding as the seed's back() pads (np.zeros, then the input copied in the middle), inside every technique's timed call; conv prev_term cropped as back() does",
    "adapt: the softmax front is written from the seed's formula exp(x_j - m) / sum_k exp(x_k - m) (the presentation shows no code for it); its loss() is split: forward = output and error (the batch loss = np.sum(error) / B as train() takes it), backward = the term expect - out",
    "adapt: conventions: the seed's term is minus the gradient, so Rust's dlogits = -term / B; the seed's FC weights [1, 1, 10, 20, 4, 4] and bias [1, 1, 10] are Rust's [10, 320] and [10] reshaped row-major, its input [B, 20, 4, 4] Rust's [B, 320]",
    "adapt: pooling back compares prev_out with the forward's out (Rust's y), sending the gradient to every maximum of a window; Rust sends it to the first in row-major order, so the check requires windows_with_tied_maximum = 0 in the manifest (continuous random inputs: none)",
    "adapt: ReLU back's mask M[M >= 0] = 1 gives slope 1 at y == 0 where Rust gives 0.01; the check requires zeros_in_y = 0 in the manifest",
    "adapt: trainer: the Convolutional constructor's `rate` unpacked as speed, moment, white = rate (not shown in the presentation); prints, saving and the test set left out of the timed loop",
    "adapt: trainer: where a layer has no code for a technique, the seed network's own code runs (pooling front: technique 3, the network's Pooling.front(); pooling back: technique 3, the only one shown; activations and softmax: their only code)",
]

TECHNIQUES = ("naive", "per-output", "axis-reduce", "im2col")
TECHNIQUE_NAMES = {
    "naive": "every index a loop, scalar multiply-add (the seed's technique 1)",
    "per-output": "one loop per output, whole-window np.sum(w[d] * window) (the seed's technique 2)",
    "axis-reduce": "reductions along axes of broadcast products, np.sum(np.sum(..., axis=...)) (the seed's technique 3)",
    "im2col": "np.einsum (the seed's technique 4, in the im2col column)",
}

# Every output within TOLERANCE of Rust's, relative to the Rust array's scale (its max |value|).
TOLERANCE = 1e-4
TOLERANCE_TEXT = (
    "max |numpy - Rust| <= 1e-4 * max |Rust| for every output array of a pass (max_error is that "
    "ratio, the largest over the pass's arrays); numpy in float64 on the Rust f32 inputs widened "
    "exactly, Rust in f32, so the difference is Rust's f32 rounding (about 1e-7 to 1e-5 here); a "
    "wrong index or convention moves an element by O(1) of the scale"
)

# The seed network's FC input, pool3's output per example: Rust's [b, 320] is [b, 20, 4, 4].
FC_INPUT = (20, 4, 4)

# ---------------------------------------------------------------------------------------------
# The seed's techniques. Shapes in the seed's names: images [B, D, H, W]; conv filters
# weigths [D, I, F, F] over inputs [B, I, H1, W1]; the FC's weigths [D, H, W, I, J, K] over
# inputs [B, I, J, K], output [B, D, H, W]. Each returns what the seed's code computed:
# forward the output; backward (prev_term, delta, delta_bias), the gradients summed over the
# batch, where term is the gradient from above.
# ---------------------------------------------------------------------------------------------


def pad(inp, P):
    """The seed's zero padding (its Convolutional.back()): [B, I, H1, W1] -> [B, I, H1+2P, W1+2P]."""
    B, D1, H1, W1 = np.shape(inp)
    padded = np.zeros((B, D1, H1 + 2*P, W1 + 2*P))
    padded[:, :, P:H1+P, P:W1+P] = inp
    return padded


def conv_shape(inp, weigths, S, P):
    """(B, I, D, F, H, W): inp [B, I, H1, W1], weigths [D, I, F, F] -> output [B, D, H, W]."""
    B, I, H1, W1 = np.shape(inp)
    D, _, F, _ = np.shape(weigths)
    return B, I, D, F, (H1 - F + 2*P) // S + 1, (W1 - F + 2*P) // S + 1


def conv_front_1(inp, weigths, bias, S, P):
    """Technique 1: inp [B, I, H1, W1], weigths [D, I, F, F], bias [D] -> out [B, D, H, W]."""
    B, I, D, F, H, W = conv_shape(inp, weigths, S, P)
    pad_inp = pad(inp, P)
    out1 = np.zeros((B, D, H, W))
    for b in range(B):
        for d in range(D):
            for h in range(H):
                for w in range(W):
                    out1[b, d, h, w] += bias[d]
                    for i in range(I):
                        for j in range(F):
                            for k in range(F):
                                out1[b, d, h, w] += pad_inp[b, i, h*S+j, w*S+k] * weigths[d, i, j, k]
    return out1


def conv_front_2(inp, weigths, bias, S, P):
    """Technique 2: inp [B, I, H1, W1], weigths [D, I, F, F], bias [D] -> out [B, D, H, W]."""
    B, I, D, F, H, W = conv_shape(inp, weigths, S, P)
    pad_inp = pad(inp, P)
    out2 = np.zeros((B, D, H, W))
    for b in range(B):
        for d in range(D):
            for h in range(H):
                for w in range(W):
                    out2[b, d, h, w] = np.sum(weigths[d] * pad_inp[b, :, h*S:h*S+F, w*S:w*S+F]) + bias[d]
    return out2


def conv_front_3(inp, weigths, bias, S, P):
    """Technique 3 (the unbatched one, per example): inp [B, I, H1, W1], weigths [D, I, F, F],
    bias [D] -> out [B, D, H, W]."""
    B, I, D, F, H, W = conv_shape(inp, weigths, S, P)
    pad_inp = pad(inp, P)
    out3 = np.zeros((B, D, H, W))
    for h in range(H):
        for w in range(W):
            for b in range(B):
                out3[b, :, h, w] = np.sum(np.sum(np.sum(weigths * pad_inp[b, :, h*S:h*S+F, w*S:w*S+F], axis = 3), axis = 2), axis = 1) + bias
    return out3


def conv_front_4(inp, weigths, bias, S, P):
    """Technique 4: inp [B, I, H1, W1], weigths [D, I, F, F], bias [D] -> out [B, D, H, W]."""
    B, I, D, F, H, W = conv_shape(inp, weigths, S, P)
    pad_inp = pad(inp, P)
    out4 = np.zeros((B, D, H, W))
    distrib = np.ones((B))
    for h in range(H):
        for w in range(W):
            out4[:,:,h,w] = np.transpose(np.einsum('...ijk,bijk', weigths, pad_inp[:,:,h*S:h*S+F, w*S:w*S+F])) + np.einsum('d,...', bias, distrib)
    return out4


def conv_back_1(prev_out, weigths, term, S, P):
    """Technique 1: prev_out [B, I, H1, W1], weigths [D, I, F, F], term [B, D, H, W] ->
    (prev_term [B, I, H1, W1], delta [D, I, F, F], delta_bias [D])."""
    B, I, D, F, H, W = conv_shape(prev_out, weigths, S, P)
    H1, W1 = np.shape(prev_out)[2:]
    pad_prev_out = pad(prev_out, P)
    prev_term1 = np.zeros(np.shape(pad_prev_out))
    delta1 = np.zeros(np.shape(weigths))
    delta_bias1 = np.zeros((D))
    for b in range(B):
        for d in range(D):
            for h in range(H):
                for w in range(W):
                    delta_bias1[d] += term[b, d, h, w]
                    for i in range(I):
                        for j in range(F):
                            for k in range(F):
                                delta1[d, i, j, k] += pad_prev_out[b, i, h*S+j, w*S+k] * term[b, d, h, w]
                                prev_term1[b, i, h*S+j, w*S+k] += term[b, d, h, w] * weigths[d, i, j, k]
    return prev_term1[:, :, P:H1+P, P:W1+P], delta1, delta_bias1


def conv_back_2(prev_out, weigths, term, S, P):
    """Technique 2: shapes as conv_back_1."""
    B, I, D, F, H, W = conv_shape(prev_out, weigths, S, P)
    H1, W1 = np.shape(prev_out)[2:]
    pad_prev_out = pad(prev_out, P)
    prev_term2 = np.zeros(np.shape(pad_prev_out))
    delta2 = np.zeros(np.shape(weigths))
    delta_bias2 = np.zeros((D))
    for b in range(B):
        for d in range(D):
            for h in range(H):
                for w in range(W):
                    delta2[d] += pad_prev_out[b, :, h*S:h*S+F, w*S:w*S+F] * term[b, d, h, w]
                    prev_term2[b, :, h*S:h*S+F, w*S:w*S+F] += term[b, d, h, w] * weigths[d]
                    delta_bias2[d] += term[b, d, h, w]
    return prev_term2[:, :, P:H1+P, P:W1+P], delta2, delta_bias2


def conv_back_3(prev_out, weigths, term, S, P):
    """Technique 3 (the unbatched one, per example; its delta3 is an np.einsum, as the seed
    wrote it): shapes as conv_back_1."""
    B, I, D, F, H, W = conv_shape(prev_out, weigths, S, P)
    H1, W1 = np.shape(prev_out)[2:]
    pad_prev_out = pad(prev_out, P)
    prev_term3 = np.zeros(np.shape(pad_prev_out))
    delta3 = np.zeros(np.shape(weigths))
    for b in range(B):
        for h in range(H):
            for w in range(W):
                prev_term3[b, :, h*S:h*S+F, w*S:w*S+F] += np.sum(np.transpose(np.transpose(term[b, :, h, w]) * np.transpose(weigths)), axis = 0)
                delta3 += np.einsum('ijk,...', pad_prev_out[b, :, h*S:h*S+F, w*S:w*S+F], term[b, :, h, w])
    delta_bias3 = np.sum(term, axis = (3, 2, 0))
    return prev_term3[:, :, P:H1+P, P:W1+P], delta3, delta_bias3


def conv_back_4(prev_out, weigths, term, S, P):
    """Technique 4, the seed network's Convolutional.back() without its update: shapes as
    conv_back_1."""
    B, I, D, F, H, W = conv_shape(prev_out, weigths, S, P)
    H1, W1 = np.shape(prev_out)[2:]
    delta = np.zeros(np.shape(weigths))
    padded_prev_out = np.zeros((B, I, H1 + 2*P, W1 + 2*P))
    padded_prev_out[:, :, P:H1+P, P:W1+P] = prev_out
    padded_prev_term = np.zeros((B, I, H1 + 2*P, W1 + 2*P))
    delta_bias = np.sum(term, axis = (3, 2, 0))
    for b in range(B):
        for h in range(H):
            for w in range(W):
                padded_prev_term[b, :, h*S:h*S+F, w*S:w*S+F] += np.einsum('d..., d...', term[b, :, h, w], weigths)
                delta += np.einsum('ijk,...', padded_prev_out[b, :, h*S:h*S+F, w*S:w*S+F], term[b, :, h, w])
    return padded_prev_term[:, :, P:H1+P, P:W1+P], delta, delta_bias


def fc_front_1(inp, weigths, bias):
    """Technique 1: inp [B, I, J, K], weigths [D, H, W, I, J, K], bias [D, H, W] -> out [B, D, H, W]."""
    B, I, J, K = np.shape(inp)
    D, H, W = np.shape(bias)
    out1 = np.zeros((B, D, H, W))
    for b in range(B):
        for d in range(D):
            for h in range(H):
                for w in range(W):
                    out1[b, d, h, w] += bias[d, h, w]
                    for i in range(I):
                        for j in range(J):
                            for k in range(K):
                                out1[b, d, h, w] += inp[b, i, j, k] * weigths[d, h, w, i, j, k]
    return out1


def fc_front_2(inp, weigths, bias):
    """Technique 2: shapes as fc_front_1."""
    B = np.shape(inp)[0]
    D, H, W = np.shape(bias)
    out2 = np.zeros((B, D, H, W))
    for b in range(B):
        for d in range(D):
            for h in range(H):
                for w in range(W):
                    out2[b, d, h, w] = np.sum(weigths[d, h, w] * inp[b]) + bias[d, h, w]
    return out2


def fc_front_3(inp, weigths, bias):
    """Technique 3 (the unbatched one, per example): shapes as fc_front_1."""
    B = np.shape(inp)[0]
    D, H, W = np.shape(bias)
    out3 = np.zeros((B, D, H, W))
    for b in range(B):
        out3[b] = np.sum(np.sum(np.sum(weigths * inp[b], axis = 5), axis = 4), axis = 3) + bias
    return out3


def fc_front_4(inp, weigths, bias):
    """Technique 4 (the seed's FullyConnected.front()): shapes as fc_front_1."""
    B = np.shape(inp)[0]
    distrib = np.ones((B))
    out4 = np.transpose(np.einsum('bijk,...ijk', inp, weigths), axes = [3, 0, 1, 2]) + np.einsum('dhw,...', bias, distrib)
    return out4


def fc_back_1(prev_out, weigths, term):
    """Technique 1: prev_out [B, I, J, K], weigths [D, H, W, I, J, K], term [B, D, H, W] ->
    (prev_term [B, I, J, K], delta [D, H, W, I, J, K], delta_bias [D, H, W])."""
    B, I, J, K = np.shape(prev_out)
    D, H, W = np.shape(term)[1:]
    prev_term1 = np.zeros(np.shape(prev_out))
    delta1 = np.zeros(np.shape(weigths))
    delta_bias1 = np.zeros((D, H, W))
    for b in range(B):
        for d in range(D):
            for h in range(H):
                for w in range(W):
                    delta_bias1[d, h, w] += term[b, d, h, w]
                    for i in range(I):
                        for j in range(J):
                            for k in range(K):
                                delta1[d, h, w, i, j, k] += prev_out[b, i, j, k] * term[b, d, h, w]
                                prev_term1[b, i, j, k] += term[b, d, h, w] * weigths[d, h, w, i, j, k]
    return prev_term1, delta1, delta_bias1


def fc_back_2(prev_out, weigths, term):
    """Technique 2: shapes as fc_back_1."""
    B = np.shape(prev_out)[0]
    D, H, W = np.shape(term)[1:]
    prev_term2 = np.zeros(np.shape(prev_out))
    delta2 = np.zeros(np.shape(weigths))
    delta_bias2 = np.zeros((D, H, W))
    for d in range(D):
        for h in range(H):
            for w in range(W):
                for b in range(B):
                    delta2[d, h, w] += prev_out[b] * term[b, d, h, w]
                    prev_term2[b] += term[b, d, h, w] * weigths[d, h, w]
                    delta_bias2[d, h, w] += term[b, d, h, w]
    return prev_term2, delta2, delta_bias2


def fc_back_3(prev_out, weigths, term):
    """Technique 3 (the unbatched one, per example; its delta3 is an np.einsum, as the seed
    wrote it): shapes as fc_back_1."""
    B = np.shape(prev_out)[0]
    delta3 = np.zeros(np.shape(weigths))
    prev_term3 = np.zeros(np.shape(prev_out))
    for b in range(B):
        delta3 += np.einsum('ijk,...', prev_out[b], term[b])
        prev_term3[b] = np.sum(np.sum(np.sum(np.transpose(np.transpose(term[b]) * np.transpose(weigths)), axis = 0), axis = 0), axis = 0)
    delta_bias3 = np.sum(term, axis = 0)
    return prev_term3, delta3, delta_bias3


def fc_back_4(prev_out, weigths, term):
    """Technique 4 (the seed's FullyConnected.back() without its update): shapes as fc_back_1."""
    delta4 = np.einsum('bijk,b...', prev_out, term)
    prev_term4 = np.transpose(np.einsum('bdhw,dhw...', term, weigths), axes = [3, 0, 1, 2])
    delta_bias4 = np.sum(term, axis = 0)
    return prev_term4, delta4, delta_bias4


def pool_shape(inp, F, S):
    """(B, I, H, W): inp [B, I, H1, W1] -> out [B, I, H, W] (I channels, the seed's D = I)."""
    B, I, H1, W1 = np.shape(inp)
    return B, I, (H1 - F) // S + 1, (W1 - F) // S + 1


def pool_front_1(inp, F, S):
    """Technique 1: inp [B, D, H1, W1] -> out [B, D, H, W]."""
    B, I, H, W = pool_shape(inp, F, S)
    out1 = np.zeros((B, I, H, W))
    for b in range(B):
        for d in range(I):
            for h in range(H):
                for w in range(W):
                    out1[b, d, h, w] = np.max(inp[b, d, h*S:h*S+F, w*S:w*S+F])
    return out1


def pool_front_2(inp, F, S):
    """Technique 2: shapes as pool_front_1."""
    B, I, H, W = pool_shape(inp, F, S)
    out2 = np.zeros((B, I, H, W))
    for b in range(B):
        for h in range(H):
            for w in range(W):
                out2[b, :, h, w] = np.max(np.max(inp[b, :, h*S:h*S+F, w*S:w*S+F], axis = 1), axis = 1)
    return out2


def pool_front_3(inp, F, S):
    """Technique 3, also the seed network's Pooling.front(): shapes as pool_front_1."""
    B, I, H, W = pool_shape(inp, F, S)
    out3 = np.zeros((B, I, H, W))
    for h in range(H):
        for w in range(W):
            out3[:, :, h, w] = np.max(np.max(inp[:, :, h*S:h*S+F, w*S:w*S+F], axis = 2), axis = 2)
    return out3


def pool_back_3(prev_out, out, term, F, S):
    """Technique 3: prev_out [B, D, H1, W1], the forward's out [B, D, H, W], term [B, D, H, W]
    -> prev_term [B, D, H1, W1]."""
    B, I, H, W = np.shape(out)
    prev_term3 = np.zeros(np.shape(prev_out))
    ones = np.ones((F, F))
    for h in range(H):
        for w in range(W):
            M = prev_out[:, :, h*S:h*S+F, w*S:w*S+F] - np.transpose(np.einsum('b...,ij' ,out[:, :, h, w], ones), axes = [1, 0, 3, 2])
            M[M == 0] = 1
            M[M != 1] = 0
            prev_term3[:, :, h*S:h*S+F, w*S:w*S+F] += np.einsum('...,...ij', term[:, :, h, w], M)
    return prev_term3


def relu_front(inp):
    """The seed's Relu.front(): inp [B, D, H, W] -> output [B, D, H, W]."""
    def ReLU(array):
        return np.maximum(array, 0.01*array)
    return ReLU(inp)


def relu_back(output, term):
    """The seed's Relu.back(): the forward's output and term [B, D, H, W] -> prev_term."""
    M = np.copy(output)
    M[M >= 0] = 1
    M[M < 0] = 0.01
    return term * M


def sigmoid_front(inp):
    """The seed's Sigmoid.front(): inp [B, D, H, W] -> output [B, D, H, W]."""
    def sigmoid(array):
        return 1 / (1 + np.exp(-array))
    return sigmoid(inp)


def sigmoid_back(output, term):
    """The seed's Sigmoid.back(): the forward's output and term [B, D, H, W] -> prev_term."""
    return term * output * (1 - output)


def softmax_front(inp):
    """From the seed's formula (no code shown): inp [B, D, H, W] -> output [B, D, H, W], the
    softmax of each example's D*H*W values, e^(x_j - m) / sum_k e^(x_k - m), m their maximum."""
    B = np.shape(inp)[0]
    X = np.reshape(inp, (B, -1))
    e = np.exp(X - np.max(X, axis = 1, keepdims = True))
    return np.reshape(e / np.sum(e, axis = 1, keepdims = True), np.shape(inp))


def softmax_error(output, expect):
    """The seed's Softmax.loss(), its error: output [B, 1, 1, C], one-hot expect [B, C] -> the
    cross-entropy of each example [B]."""
    B = np.shape(expect)[0]
    out = np.copy(np.reshape(output, np.shape(expect)))
    return - np.stack([np.sum(expect[b]*np.log(out[b])) for b in range(B)])


def softmax_term(output, expect):
    """The seed's Softmax.loss(), its term: output [B, 1, 1, C], one-hot expect [B, C] -> term
    = expect - out [B, 1, 1, C] (minus the gradient of the summed loss)."""
    out = np.copy(np.reshape(output, np.shape(expect)))
    err = expect - out
    return np.reshape(err, np.shape(output))


def softmax_forward(inp, expect):
    """The softmax's forward as timed: output and the batch loss np.sum(error) / B (train())."""
    output = softmax_front(inp)
    error = softmax_error(output, expect)
    return output, np.sum(error) / np.shape(expect)[0]


# (kind, pass) -> technique -> function, None where the seed wrote none for that layer.
ALL = dict.fromkeys(TECHNIQUES)
KERNELS = {
    ("conv", "forward"): dict(zip(TECHNIQUES, (conv_front_1, conv_front_2, conv_front_3, conv_front_4))),
    ("conv", "backward"): dict(zip(TECHNIQUES, (conv_back_1, conv_back_2, conv_back_3, conv_back_4))),
    ("fc", "forward"): dict(zip(TECHNIQUES, (fc_front_1, fc_front_2, fc_front_3, fc_front_4))),
    ("fc", "backward"): dict(zip(TECHNIQUES, (fc_back_1, fc_back_2, fc_back_3, fc_back_4))),
    ("pool", "forward"): dict(zip(TECHNIQUES, (pool_front_1, pool_front_2, pool_front_3, None))),
    ("pool", "backward"): {**ALL, "axis-reduce": pool_back_3},
    ("leaky_relu", "forward"): {**ALL, "axis-reduce": relu_front},
    ("leaky_relu", "backward"): {**ALL, "axis-reduce": relu_back},
    ("sigmoid", "forward"): {**ALL, "axis-reduce": sigmoid_front},
    ("sigmoid", "backward"): {**ALL, "axis-reduce": sigmoid_back},
    ("softmax", "forward"): {**ALL, "axis-reduce": softmax_forward},
    ("softmax", "backward"): {**ALL, "axis-reduce": softmax_term},
}
PASSES = ("forward", "backward")


# ---------------------------------------------------------------------------------------------
# The exchange with Rust: cells, the check.
# ---------------------------------------------------------------------------------------------


class Failure(Exception):
    """Ends the script with `error: <message>` and exit 1."""


class Cell:
    """One layer's pass at one batch: the seed-shaped float64 arguments of its techniques, and
    how to turn a technique's result into the Rust arrays it must equal."""

    def __init__(self, group, batch, kind, pass_, args, expected, convert):
        self.group, self.batch, self.kind, self.pass_ = group, batch, kind, pass_
        self.args = args          # positional arguments of every technique of the cell
        self.expected = expected  # Rust array name -> numpy array (as loaded)
        self.convert = convert    # technique result -> {Rust array name: float64 array}

    def techniques(self):
        return KERNELS[(self.kind, self.pass_)]

    def run(self, technique):
        return self.techniques()[technique](*self.args)


def load_exchange(directory):
    """The manifest of DIR/manifest.json and its arrays: (manifest, {(case, batch): {name: array}})."""
    path = os.path.join(directory, "manifest.json")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise Failure(f"cannot read {path}: {e} (make it with: cargo run -p study --release --bin exchange -- --out {directory})")
    arrays = {}
    try:
        for case in manifest["cases"]:
            for entry in case["batches"]:
                loaded = {}
                for name, meta in entry["arrays"].items():
                    a = np.load(os.path.join(directory, meta["file"]))
                    if list(a.shape) != meta["shape"]:
                        raise Failure(f"{meta['file']} has shape {list(a.shape)}, the manifest says {meta['shape']}")
                    loaded[name] = a
                arrays[(case["name"], entry["batch"])] = loaded
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Failure(f"cannot load the exchange in {directory}: {e!r}")
    return manifest, arrays


def check_conventions(manifest):
    """The Rust conventions this script matches; any other is an error before any comparison."""
    expected = {
        ("conv", "operation"): "cross-correlation",
        ("conv", "weight_gradient"): "sum",
        ("conv", "bias_gradient"): "sum",
        ("fc", "weight_gradient"): "sum",
        ("fc", "bias_gradient"): "sum",
        ("fc", "flatten"): "c, h, w",
        ("pool", "tie_rule"): "first maximum in row-major order",
        ("leaky_relu", "slope"): 0.01,
        ("leaky_relu", "backward_reads"): "y",
        ("leaky_relu", "gradient_at_zero"): "slope",
        ("sigmoid", "backward_reads"): "y",
        ("softmax", "loss"): "mean",
        ("softmax", "dlogits"): "(probs - onehot) / b",
    }
    conventions = manifest.get("conventions", {})
    for (layer, key), value in expected.items():
        got = conventions.get(layer, {}).get(key)
        if not (got == value or (isinstance(value, float) and isinstance(got, float) and abs(got - value) < 1e-9)):
            raise Failure(f"the exchange's {layer} convention {key} is {got!r}; this script matches {value!r}")
    if manifest.get("technique") != "naive":
        raise Failure(f"the exchange holds technique {manifest.get('technique')!r}, expected the naive reference")


def cells(manifest, arrays, batches=None):
    """Every (layer, pass, batch) of the exchange as a Cell, in the manifest's order."""
    out = []
    for case in manifest["cases"]:
        kind, params = case["kind"], case["params"]
        groups = dict(zip(PASSES, case["groups"]))
        for entry in case["batches"]:
            B = entry["batch"]
            if batches is not None and B not in batches:
                continue
            a = arrays[(case["name"], B)]
            f64 = {name: np.asarray(v, dtype=np.float64) for name, v in a.items()}
            facts = entry.get("facts", {})
            if kind == "conv":
                S, P = params["stride"], params["pad"]
                fwd = ((f64["x"], f64["w"], f64["bias"], S, P), {"y": a["y"]}, lambda r: {"y": r})
                bwd = ((f64["x"], f64["w"], f64["dy"], S, P), {k: a[k] for k in ("dx", "dw", "dbias")},
                       lambda r: {"dx": r[0], "dw": r[1], "dbias": r[2]})
            elif kind == "pool":
                if facts.get("windows_with_tied_maximum") != 0:
                    raise Failure(f"{case['name']} at batch {B}: the exchange has windows with a tied maximum "
                                  f"({facts.get('windows_with_tied_maximum')!r}): the seed's mask sends the gradient "
                                  "to every tied maximum, Rust to the first, so they cannot be compared")
                F, S = params["size"], params["stride"]
                fwd = ((f64["x"], F, S), {"y": a["y"]}, lambda r: {"y": r})
                bwd = ((f64["x"], f64["y"], f64["dy"], F, S), {"dx": a["dx"]}, lambda r: {"dx": r})
            elif kind == "fc":
                if int(np.prod(FC_INPUT)) != params["inputs"]:
                    raise Failure(f"{case['name']}: {params['inputs']} inputs, expected pool3's {FC_INPUT}")
                O = params["outputs"]
                inp = np.reshape(f64["x"], (B,) + FC_INPUT)
                weigths = np.reshape(f64["w"], (1, 1, O) + FC_INPUT)
                bias = np.reshape(f64["bias"], (1, 1, O))
                term = np.reshape(f64["dy"], (B, 1, 1, O))
                fwd = ((inp, weigths, bias), {"y": a["y"]}, lambda r, B=B, O=O: {"y": np.reshape(r, (B, O))})
                bwd = ((inp, weigths, term), {k: a[k] for k in ("dx", "dw", "dbias")},
                       lambda r, B=B, O=O: {"dx": np.reshape(r[0], (B, -1)), "dw": np.reshape(r[1], (O, -1)),
                                            "dbias": np.reshape(r[2], (O,))})
            elif kind in ("leaky_relu", "sigmoid"):
                if kind == "leaky_relu" and facts.get("zeros_in_y") != 0:
                    raise Failure(f"{case['name']} at batch {B}: y has {facts.get('zeros_in_y')!r} zeros, where the "
                                  "seed's ReLU back (slope 1) and Rust's (0.01) differ")
                fwd = ((f64["x"],), {"y": a["y"]}, lambda r: {"y": r})
                bwd = ((f64["y"], f64["dy"]), {"dx": a["dx"]}, lambda r: {"dx": r})
            elif kind == "softmax":
                C = params["classes"]
                expect = np.zeros((B, C))
                expect[np.arange(B), a["labels"]] = 1
                inp = np.reshape(f64["logits"], (B, 1, 1, C))
                fwd = ((inp, expect), {"probs": a["probs"], "loss": a["loss"]},
                       lambda r, B=B, C=C: {"probs": np.reshape(r[0], (B, C)), "loss": np.asarray(r[1])})
                probs = np.reshape(f64["probs"], (B, 1, 1, C))
                bwd = ((probs, expect), {"dlogits": a["dlogits"]},
                       lambda r, B=B, C=C: {"dlogits": -np.reshape(r, (B, C)) / B})
            else:
                raise Failure(f"unknown layer kind {kind!r} in the manifest")
            for pass_, (args, expected, convert) in zip(PASSES, (fwd, bwd)):
                out.append(Cell(groups[pass_], B, kind, pass_, args, expected, convert))
    return out


def compare(cell, technique, result):
    """The largest |numpy - Rust| / max |Rust| over the cell's arrays; Failure past TOLERANCE."""
    got = cell.convert(result)
    worst = 0.0
    for name, rust in cell.expected.items():
        mine = got[name]
        where = f"{cell.group} batch {cell.batch}, technique {technique}"
        if np.shape(mine) != np.shape(rust):
            raise Failure(f"{where}: {name} has shape {list(np.shape(mine))}, Rust's {list(np.shape(rust))}")
        rust64 = np.asarray(rust, dtype=np.float64)
        if not np.all(np.isfinite(mine)):
            raise Failure(f"{where}: {name} is not finite")
        diff = float(np.max(np.abs(mine - rust64))) if rust64.size else 0.0
        scale = float(np.max(np.abs(rust64))) if rust64.size else 0.0
        relative = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
        if not relative <= TOLERANCE:
            raise Failure(f"{where}: {name} differs from Rust by {diff:.3g} (max |Rust| {scale:.3g}, "
                          f"relative {relative:.2e} > tolerance {TOLERANCE:g})")
        worst = max(worst, relative)
    return worst


# --check-only, --quick and --self-test leave out technique 1's cells of more than this many
# scalar multiply-adds: the Python loops over conv1 and conv2 at batch 5 (6.1 and 10.2 million,
# 10-40 s a cell here), beyond CI's and quick's budgets. conv3 at batch 5 (3.2 million) and every
# convolution at batch 1 still check the same functions, their loop over the batch included.
QUICK_CHECK_MAX_MACS = 4e6


def multiply_adds(cell):
    """Scalar multiply-adds of a convolution cell's forward (its backward does twice as many
    loop bodies); 0 for other layers."""
    if cell.kind != "conv":
        return 0
    inp, weigths = cell.args[0], cell.args[1]
    B, I, D, F, H, W = conv_shape(inp, weigths, cell.args[3], cell.args[4])
    return B * D * H * W * I * F * F


def skipped(cell, quick_check):
    """Whether a quick check leaves out this cell's technique 1 (see QUICK_CHECK_MAX_MACS)."""
    return quick_check and multiply_adds(cell) > QUICK_CHECK_MAX_MACS


def check(all_cells, quick_check, log):
    """Runs every technique of every cell once and compares it with Rust. Returns
    {(group, batch, technique): (max_error, run_ns)}; a Failure on the first mismatch."""
    results = {}
    for cell in all_cells:
        for technique, fn in cell.techniques().items():
            if fn is None or (technique == "naive" and skipped(cell, quick_check)):
                continue
            start = time.perf_counter_ns()
            result = cell.run(technique)
            elapsed = time.perf_counter_ns() - start
            error = compare(cell, technique, result)
            results[(cell.group, cell.batch, technique)] = (error, elapsed)
            log(f"  checked {cell.group} batch {cell.batch} {technique}: error {error:.1e} ({elapsed / 1e9:.3f} s)")
    return results


# ---------------------------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------------------------

SLOW_NS = 1e9  # a run of at least 1 s makes a cell slow: its checked run is its first sample


def time_cell(cell, technique, checked_ns, quick):
    """Samples (ns) of one call. Fast cells: the checked run was the warm-up; then samples until
    they add up to 0.2 s (0.05 s quick) and number at least 5, at most 1000. Slow cells: the
    checked run is the first sample, more until they add up to 3 s (none quick), at most 3."""
    if checked_ns >= SLOW_NS:
        samples, budget, cap = [checked_ns], (0 if quick else 3e9), 3
        minimum = 1
    else:
        samples, budget, cap = [], (0.05e9 if quick else 0.2e9), 1000
        minimum = 5
    while len(samples) < cap and (len(samples) < minimum or sum(samples) < budget):
        start = time.perf_counter_ns()
        cell.run(technique)
        samples.append(time.perf_counter_ns() - start)
    return samples


# ---------------------------------------------------------------------------------------------
# The seed's network and trainer (part II), each layer with one technique.
# ---------------------------------------------------------------------------------------------


def kernel(kind, pass_, technique, fallback):
    """The technique's function for a layer, or the seed network's own code where it has none."""
    return KERNELS[(kind, pass_)][technique] or fallback


class Input:
    def __init__(self, B, parameters):
        self.id = "Input"
        D, H, W = parameters
        self.size = B, D, H, W
        self.output = np.zeros(self.size)
        self.term = np.zeros(self.size)

    def update(self, out):
        self.output = np.reshape(out, self.size)


class Convolutional:
    ident = 0

    def __init__(self, parameters, prev_size, technique):
        Convolutional.ident += 1
        self.id = "Convolutional_no" + str(Convolutional.ident)
        B, D1, H1, W1 = prev_size
        D2, F, S, P, rate = parameters
        if P == -1 and S == 1:
            P = int((F - 1)/2)
        self.hyper = F, S, P
        H2 = int(((H1 - F + 2*P) // S) + 1)
        W2 = int(((W1 - F + 2*P) // S) + 1)
        self.size = B, D2, H2, W2
        self.weigths = np.random.randn(D2, D1, F, F) / sqrt(D1*H1*W1)
        self.delta = np.zeros((D2, D1, F, F))
        self.bias = np.ones((D2)) / sqrt(D1*H1*W1)
        self.delta_bias = np.zeros((D2))
        self.distrib = np.ones((B))
        self.speed, self.moment, self.white = rate
        self.term = np.zeros(self.size)
        self._front = kernel("conv", "forward", technique, None)
        self._back = kernel("conv", "backward", technique, None)

    def front(self, inp):
        F, S, P = self.hyper
        self.output = self._front(inp, self.weigths, self.bias, S, P)

    def back(self, prev_layer):
        B, D, H, W = self.size
        F, S, P = self.hyper
        prev_term, delta, delta_bias = self._back(prev_layer.output, self.weigths, self.term, S, P)
        # The seed's update, as its Convolutional.back() wrote it (its speed also scales the
        # momentum term: a quirk of the seed, kept).
        self.delta_bias = (self.speed / (H*W*B) * delta_bias) + (self.moment*self.delta_bias)
        self.delta = self.speed * ((delta / (H*W*B)) + (self.moment*self.delta) - (self.white*self.weigths))
        self.weigths += self.delta
        self.bias += self.delta_bias
        prev_layer.term = prev_term


class Relu:
    def __init__(self, parameters, prev_size, technique):
        self.id = "Relu"
        self.size = prev_size
        self.term = np.zeros(self.size)

    def front(self, inp):
        self.output = relu_front(inp)

    def back(self, prev_layer):
        prev_layer.term = relu_back(self.output, self.term)


class Pooling:
    def __init__(self, parameters, prev_size, technique):
        self.id = "Pooling"
        F, S = parameters
        B, D, H1, W1 = prev_size
        self.hyper = F, S
        self.size = B, D, (H1 - F) // S + 1, (W1 - F) // S + 1
        self.output = np.zeros(self.size)
        self.term = np.zeros(self.size)
        self._front = kernel("pool", "forward", technique, pool_front_3)
        self._back = kernel("pool", "backward", technique, pool_back_3)

    def front(self, inp):
        F, S = self.hyper
        self.output = self._front(inp, F, S)

    def back(self, prev_layer):
        F, S = self.hyper
        prev_layer.term = self._back(prev_layer.output, self.output, self.term, F, S)


class FullyConnected:
    ident = 0

    def __init__(self, parameters, prev_size, technique):
        FullyConnected.ident += 1
        D, H, W, rate = parameters
        B, D1, H1, W1 = prev_size
        self.id = "FullyConnected_no" + str(FullyConnected.ident)
        self.size = (B, D, H, W)
        self.weigths = np.random.randn(D, H, W, D1, H1, W1) * 0.01 / sqrt(D1*H1*W1)
        self.delta = np.zeros((D, H, W, D1, H1, W1))
        self.bias = np.random.randn(D, H, W) * 0.01 / sqrt(D1*H1*W1)
        self.delta_bias = np.zeros((D, H, W))
        self.distrib = np.ones((B))
        self.speed, self.moment, self.white = rate
        self.term = np.zeros(self.size)
        self._front = kernel("fc", "forward", technique, None)
        self._back = kernel("fc", "backward", technique, None)

    def front(self, inp):
        self.output = self._front(inp, self.weigths, self.bias)

    def back(self, prev_layer):
        B, D, H, W = self.size
        prev_term, delta, delta_bias = self._back(prev_layer.output, self.weigths, self.term)
        # The seed's update, as its FullyConnected.back() wrote it.
        prev_layer.term = prev_term
        self.delta_bias = (self.speed / B * delta_bias) + (self.moment*self.delta_bias)
        self.bias += self.delta_bias
        self.delta = self.speed / B * (delta - self.white*self.weigths) + (self.moment*self.delta)
        self.weigths += self.delta


class Softmax:
    def __init__(self, parameters, prev_size, technique):
        self.id = "Softmax"
        self.size = prev_size
        self.term = np.zeros(self.size)

    def front(self, inp):
        self.output = softmax_front(inp)

    def back(self, prev_layer):
        prev_layer.term = self.term

    def loss(self, expect):
        self.term = softmax_term(self.output, expect)
        self.error = softmax_error(self.output, expect)


class Network:
    """The seed's Network (part II) with every layer built for one technique."""

    def __init__(self, name, B, layers_list, technique):
        self.id = name
        n = len(layers_list)
        self.depth = n
        self.batch_size = B
        self.layers = []
        self.loss = np.array([])
        Type, param = layers_list[0]
        self.layers.append(Input(B, param))
        for i in range(1, n):
            Type, param = layers_list[i]
            self.layers.append(Type(param, self.layers[i-1].size, technique))

    def train(self, example):
        n = self.depth
        img, label = example
        self.layers[0].update(img)
        # propagation avant
        for i in range(1, n):
            self.layers[i].front(self.layers[i-1].output)
        # calcul de l'erreur
        self.layers[n-1].loss(label)
        # rétropropagation
        for i in range(1, n):
            self.layers[n-i].back(self.layers[n-i-1])
        batch_loss = np.sum(self.layers[n-1].error)/self.batch_size
        self.loss = np.append(self.loss, batch_loss)


# The seed's network and rates (part III): alpha = 0.01, eta = 0.9, epsilon = 0.0001.
LAY_LIST = [(Input, (3, 32, 32)),
            (Convolutional, (16, 5, 1, 2, (0.01, 0.9, 0.0001))), (Relu, 0),
            (Pooling, (2, 2)),
            (Convolutional, (20, 5, 1, 2, (0.01, 0.9, 0.0001))), (Relu, 0),
            (Pooling, (2, 2)),
            (Convolutional, (20, 5, 1, 2, (0.01, 0.9, 0.0001))), (Relu, 0),
            (Pooling, (2, 2)),
            (FullyConnected, (1, 1, 10, (0.01, 0.9, 0.0001))), (Softmax, 0)]
TRAINER_BATCH = 5  # the batch of Rust's whole-trainer row (benches/trainer.rs)
TRAINER_DATA = ("random images of CIFAR's shape 3x32x32 (integers 0-255 from numpy's default_rng(1)), "
                "normalised per channel to mean 0 and standard deviation 1 over the set, random one-hot labels")


def trainer_data(examples):
    """`examples` images [N, 3, 32, 32] and one-hot labels [N, 10], as TRAINER_DATA says."""
    rng = np.random.default_rng(1)
    features = rng.integers(0, 256, size=(examples, 3, 32, 32)).astype(np.float64)
    mean = features.mean(axis=(0, 2, 3), keepdims=True)
    std = features.std(axis=(0, 2, 3), keepdims=True)
    features = (features - mean) / std
    labels = np.zeros((examples, 10))
    labels[np.arange(examples), rng.integers(0, 10, size=examples)] = 1
    return features, labels


def train(technique, features, labels, budget_s):
    """Trains a fresh seed network (np.random.seed(1), so every technique starts from the same
    weights) on `features` at batch 5, stopping early once `budget_s` seconds are spent (after
    at least one step). Returns (examples trained, seconds, the loss of each step)."""
    np.random.seed(1)
    Convolutional.ident = FullyConnected.ident = 0
    net = Network("Test_CIFAR", TRAINER_BATCH, LAY_LIST, technique)
    B = TRAINER_BATCH
    steps = len(features) // B
    elapsed = 0
    done = 0
    for i in range(steps):
        ex = (features[i*B : (i+1)*B], labels[i*B : (i+1)*B])
        start = time.perf_counter_ns()
        net.train(ex)
        elapsed += time.perf_counter_ns() - start
        done += 1
        if elapsed / 1e9 >= budget_s:
            break
    return done * B, elapsed / 1e9, list(net.loss)


def compare_losses(losses):
    """Every technique trained the same steps from the same weights: their losses must agree
    (float64, only summation orders differ)."""
    reference_name = next((t for t in ("im2col", "axis-reduce", "per-output", "naive") if losses.get(t)), None)
    if reference_name is None:
        return
    reference = losses[reference_name]
    for technique, loss in losses.items():
        for step, (a, b) in enumerate(zip(loss, reference)):
            if not abs(a - b) <= 1e-6 * max(1.0, abs(b)):
                raise Failure(f"trainer: technique {technique}'s loss at step {step + 1} is {a!r}, "
                              f"{reference_name}'s {b!r}: the techniques do not train alike")


# ---------------------------------------------------------------------------------------------
# The self-test: the check must catch a corrupted Rust output.
# ---------------------------------------------------------------------------------------------


def self_test(manifest, arrays, log):
    """Corrupts Rust outputs in memory, one at a time, and asserts that the check names each;
    also asserts that a changed convention is refused and that FIXES matches the header."""
    by_key = {(c.group, c.batch): c for c in cells(manifest, arrays, batches=(1, 5))}

    def bump(scale_factor):
        def corrupt(a, index):
            a[index] += scale_factor * TOLERANCE * float(np.max(np.abs(a)))
        return corrupt

    def move_in_window(a, index):
        # The gradient of one pooling window sent to its neighbour in the window.
        b, c, i, j = index
        a[b, c, i, j + 1], a[b, c, i, j] = a[b, c, i, j], a[b, c, i, j + 1]

    def times_batch(a, index):
        a *= a.shape[0]  # dlogits not divided by the batch

    def slope_one(a, index):
        a[index] *= 100.0  # a negative y's gradient with slope 1 instead of 0.01

    pool = arrays[("pool1", 1)]
    hot = tuple(int(v) for v in np.argwhere(pool["dx"] != 0)[0])
    if hot[3] % 2 == 1:
        hot = hot[:3] + (hot[3] - 1,)
    relu = arrays[("leaky_relu", 1)]
    negative = tuple(int(v) for v in np.argwhere(relu["y"] < 0)[0])
    corruptions = [
        ("fc/backward", 5, "dw", (3, 100), bump(3), "dw off by 3x the tolerance"),
        ("conv3/forward", 1, "y", (0, 5, 3, 3), bump(3), "y off by 3x the tolerance"),
        ("pool1/backward", 1, "dx", hot, move_in_window, "a gradient sent to the wrong window element"),
        ("softmax/backward", 5, "dlogits", None, times_batch, "dlogits not divided by the batch"),
        ("leaky_relu/backward", 1, "dx", negative, slope_one, "slope 1 for a negative y"),
    ]
    for group, batch, name, index, corrupt, what in corruptions:
        cell = by_key[(group, batch)]
        original = cell.expected[name]
        check([cell], True, lambda _: None)  # the clean cell passes
        corrupted = np.array(original, copy=True)
        corrupt(corrupted, index)
        cell.expected = {**cell.expected, name: corrupted}
        try:
            check([cell], True, lambda _: None)
        except Failure as e:
            message = str(e)
            for part in (group, f"batch {batch}", "technique", name, "differs from Rust by"):
                if part not in message:
                    raise Failure(f"self-test: the check caught {what} in {group} but its message lacks {part!r}: {message}")
            log(f"  caught {what}: error: {message}")
        else:
            raise Failure(f"self-test: the check did not catch {what} in {group} batch {batch}")
        finally:
            cell.expected = {**cell.expected, name: original}
    changed = copy.deepcopy(manifest)
    changed["conventions"]["conv"]["weight_gradient"] = "mean"
    try:
        check_conventions(changed)
    except Failure as e:
        log(f"  caught a changed convention: error: {e}")
    else:
        raise Failure("self-test: a conv weight gradient averaged over the batch was not refused")
    with open(os.path.abspath(__file__)) as f:
        header = f.read().split("import os", 1)[0]
    for fix in FIXES:
        if f"# {fix}\n" not in header:
            raise Failure(f"self-test: FIXES entry not in the header's comment block: {fix[:60]}")
    log(f"  the {len(FIXES)} FIXES entries are the header's comment block")


# ---------------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"error: {message} (see --help)\n")
        sys.exit(2)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    parser = Parser(description=__doc__.split("\n")[0])
    parser.add_argument("--exchange", required=True, metavar="DIR",
                        help="the Rust outputs: cargo run -p study --release --bin exchange -- --out DIR")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check-only", action="store_true",
                      help="only the check, batch 1 and 5, no timing (technique 1 of conv1 and conv2 at batch 5 left out: QUICK_CHECK_MAX_MACS)")
    mode.add_argument("--self-test", action="store_true", help="assert that the check catches corrupted Rust outputs")
    parser.add_argument("--quick", action="store_true", help="shorter timing, 50 trainer examples")
    parser.add_argument("--out", metavar="FILE", help="the JSON to write (a timing run needs it)")
    parser.add_argument("--verbose", action="store_true", help="print every cell")
    args = parser.parse_args()
    if not (args.check_only or args.self_test) and not args.out:
        parser.error("a timing run needs --out FILE (or give --check-only or --self-test)")
    if (args.check_only or args.self_test) and (args.out or args.quick):
        parser.error("--check-only and --self-test take neither --out nor --quick")

    wall = time.perf_counter()

    def log(message):
        if args.verbose:
            print(message, flush=True)

    manifest, arrays = load_exchange(args.exchange)
    check_conventions(manifest)
    if args.self_test:
        self_test(manifest, arrays, print)
        print(f"self-test passed: the check caught every corruption ({time.perf_counter() - wall:.1f} s)")
        return
    all_cells = cells(manifest, arrays)
    quick_check = args.check_only or args.quick
    results = check(all_cells, quick_check, log)
    left_out = sorted({f"{c.group} batch {c.batch}" for c in all_cells if skipped(c, quick_check)})
    note = f"; naive left out at {', '.join(left_out)}" if left_out else ""
    print(f"check passed: {len(results)} (layer, pass, batch, technique) cells equal Rust's within "
          f"{TOLERANCE:g} of their scale{note} ({time.perf_counter() - wall:.1f} s)", flush=True)
    if args.check_only:
        return

    median_ns, samples, max_error = {}, {}, {}
    for cell in all_cells:
        for table in (median_ns, samples, max_error):
            table.setdefault(cell.group, {})[str(cell.batch)] = {}
        for technique in TECHNIQUES:
            fn = cell.techniques()[technique]
            key = (cell.group, cell.batch, technique)
            if fn is None:  # the seed wrote no such technique for this layer
                values = (None, None, None)
            elif key not in results:  # left out of a quick run
                values = (None, 0, None)
            else:
                error, checked_ns = results[key]
                s = time_cell(cell, technique, checked_ns, args.quick)
                values = (float(statistics.median(s)), len(s), error)
                log(f"  timed {cell.group} batch {cell.batch} {technique}: {values[0] / 1e6:.3f} ms, {len(s)} samples")
            for table, value in zip((median_ns, samples, max_error), values):
                table[cell.group][str(cell.batch)][technique] = value
        print(f"  timed {cell.group} batch {cell.batch} ({time.perf_counter() - wall:.0f} s)", flush=True)
    print(f"timed the layers ({time.perf_counter() - wall:.1f} s)", flush=True)

    examples = 50 if args.quick else 1000
    budget = 30 if args.quick else 150
    features, labels = trainer_data(examples)
    seconds, examples_run, measured, losses = {}, {}, {}, {}
    for technique in TECHNIQUES:
        if args.quick and technique == "naive":
            # One step of technique 1 takes about a minute: beyond --quick's budget.
            seconds[technique] = measured[technique] = None
            examples_run[technique] = 0
            continue
        done, elapsed, loss = train(technique, features, labels, budget)
        examples_run[technique] = done
        measured[technique] = elapsed
        seconds[technique] = elapsed * examples / done
        losses[technique] = loss
        print(f"  trainer {technique}: {done} examples in {elapsed:.1f} s"
              + ("" if done == examples else f" (x{examples / done:g} to {examples}: {seconds[technique]:.0f} s)"),
              flush=True)
    compare_losses(losses)

    report = {
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "threads": THREADS,
        "quick": bool(args.quick),
        "date": datetime.date.today().isoformat(),
        "fixes": FIXES,
        "technique_names": TECHNIQUE_NAMES,
        "tolerance": TOLERANCE_TEXT,
        "median_ns": median_ns,
        "samples": samples,
        "max_error": max_error,
        "trainer": {
            "batch": TRAINER_BATCH,
            "examples": examples,
            "seconds": seconds,
            "examples_run": examples_run,
            "measured_seconds": measured,
            "data": TRAINER_DATA,
        },
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }
    directory = os.path.dirname(os.path.abspath(args.out))
    try:
        os.makedirs(directory, exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    except OSError as e:
        raise Failure(f"cannot write {args.out}: {e}")
    print(f"wrote {args.out} ({report['wall_seconds']} s)")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
