// tapegrad: the Elman recurrence over a whole sequence as one op, the fast path behind nn::RNN.
// Part of the op library (ops.hpp includes every family); implemented in recurrent.cpp.
#pragma once

#include "tensor.hpp"

namespace tapegrad {

struct RNNSequenceOptions {
    bool relu = false;     // the nonlinearity: tanh (default) or relu
    bool reverse = false;  // run from the last step to the first (the reverse half of a bidirectional RNN)
};

// Every hidden state of an Elman RNN layer, [T, B, H]:
//     h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),  t = 0, 1, .., T-1 (T-1, .., 0 when reverse)
// x [T, B, F], w_ih [H, F], w_hh [H, H], b_ih and b_hh [H] or both undefined, h0 [B, H] or undefined
// (zeros). It computes exactly what the composed ops (linear, matmul, add, tanh per step) compute,
// but records one tape entry for the sequence instead of several per step, and keeps nothing but
// the output for backward: the input projection of all steps is one GEMM written into the output,
// each step adds one GEMM and applies the activation in place, and backward turns the incoming
// gradient into the pre-activation gradients in place, then forms dW_hh, dW_ih, dx and the bias
// gradients with one GEMM (or one pass) each over all steps.
Tensor rnn_sequence(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                    const Tensor& b_hh, RNNSequenceOptions options = {});

}  // namespace tapegrad
