/// \file
/// \brief The Elman, LSTM and GRU recurrences over a whole sequence, each as one op.
/// \ingroup ops
///
/// The Elman, LSTM and GRU recurrences over a whole sequence, each as one op: the fast path
/// behind nn::RNN, nn::LSTM and nn::GRU. Part of the op library (ops.hpp includes every family);
/// implemented in recurrent.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup ops
/// @{

/// What every fused sequence op returns. output [T, B, H] holds h_t at every step (zeros at padded
/// steps); h_n [B, H] is the state after each sequence's own last step (its first step, t = 0, when
/// reverse); c_n [B, H] is the LSTM's cell state there (undefined for RNN and GRU). All three are
/// differentiable: a loss may use any of them.
struct SequenceResult {
    Tensor output;  ///< [T, B, H] h_t at every step
    Tensor h_n;     ///< [B, H] the state after each row's last step
    Tensor c_n;     ///< [B, H] the LSTM's cell state there; undefined for RNN and GRU
};

/// Options of lstm_sequence() and gru_sequence().
struct SequenceOptions {
    bool reverse = false;  ///< run from the last step to the first (the reverse half of a bidirectional layer)
    /// One length per batch row, each in [1, T]; empty: every row is T steps long. A step t >= lengths[b]
    /// is padding for row b: it keeps the state, emits zeros, and its input (whatever it holds, NaN
    /// included) reaches neither the result nor any gradient. Reverse rows start at their own last step.
    std::vector<std::int64_t> lengths = {};
};

/// Options of rnn_sequence().
struct RNNSequenceOptions {
    bool relu = false;     ///< the nonlinearity: tanh (default) or relu
    bool reverse = false;  ///< as in SequenceOptions
    std::vector<std::int64_t> lengths = {};  ///< as in SequenceOptions
};

/// Every hidden state of an Elman RNN layer:
///
///     h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),  t = 0, 1, .., T-1 (T-1, .., 0 when reverse)
///
/// x [T, B, F], w_ih [H, F], w_hh [H, H], b_ih and b_hh [H] or both undefined, h0 [B, H] or undefined
/// (zeros). It computes exactly what the composed ops (linear, matmul, add, tanh per step) compute,
/// but records one tape entry for the sequence instead of several per step, and keeps nothing but
/// the states for backward: the input projection of all steps is one GEMM written into the output,
/// each step adds one GEMM and applies the activation in place, and backward turns the incoming
/// gradient into the pre-activation gradients in place, then forms dW_hh, dW_ih, dx and the bias
/// gradients with one GEMM (or one pass) each over all steps.
SequenceResult rnn_sequence(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                            const Tensor& b_ih, const Tensor& b_hh, const RNNSequenceOptions& options = {});

/// An LSTM layer, PyTorch's equations and gate order (i, f, g, o):
///
///     gates = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh  [B, 4H]
///     c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g),  h_t = sigmoid(o) * tanh(c_t)
///
/// x [T, B, F], w_ih [4H, F], w_hh [4H, H], b_ih and b_hh [4H] or both undefined, h0 and c0 [B, H] or
/// undefined (zeros). One GEMM for the input projection of all steps; per step one GEMM and one gate
/// kernel; backward forms the gate gradients step by step, then dW_ih, dW_hh, dx and the biases with
/// one GEMM (or one pass) each over all steps. Saves the gate activations, h and c of every step.
SequenceResult lstm_sequence(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                             const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                             const SequenceOptions& options = {});

/// A GRU layer, PyTorch's equations and gate order (r, z, n):
///
///     r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr),  z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
///     n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),  h' = (1 - z) * n + z * h
///
/// x [T, B, F], w_ih [3H, F], w_hh [3H, H], b_ih and b_hh [3H] or both undefined, h0 [B, H] or undefined
/// (zeros). Laid out like lstm_sequence; b_hh stays in the step because b_hn is multiplied by r.
SequenceResult gru_sequence(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                            const Tensor& b_ih, const Tensor& b_hh, const SequenceOptions& options = {});

/// One direction's weights and initial states for the bidirectional ops; each as in the
/// one-direction op (c0 only for the LSTM; undefined h0, c0: zeros; b_ih and b_hh both or neither).
struct DirectionWeights {
    Tensor w_ih;  ///< [G, F], G = H (Elman), 4H (LSTM) or 3H (GRU)
    Tensor w_hh;  ///< [G, H]
    Tensor b_ih;  ///< [G], or undefined together with b_hh
    Tensor b_hh;  ///< [G], or undefined together with b_ih
    Tensor h0;    ///< [B, H] the initial state, or undefined (zeros)
    Tensor c0;    ///< [B, H] the LSTM's initial cell state, or undefined (zeros); LSTM only
};

/// Both directions of a bidirectional Elman layer as one op: what rnn_sequence() computes with
/// `forward` and with `reverse` (options.reverse must be false; the lengths apply to both), with
/// output [T, B, 2H] (the forward direction's states, then the reverse one's, as
/// torch.nn.RNN(bidirectional=True) lays them out) and h_n [2, B, H] (forward, reverse).
///
/// When the BLAS may use two or more threads (blas_threads()), the two directions run at once, on
/// the calling thread and one more, each with half the BLAS's threads, forward and backward; with
/// one, one after the other. The numbers are the same either way. If one tensor is an input of
/// both directions (the same weight given twice, say), backward runs them one after the other.
SequenceResult rnn_sequence_bidirectional(const Tensor& x, const DirectionWeights& forward,
                                          const DirectionWeights& reverse, const RNNSequenceOptions& options = {});

/// Both directions of a bidirectional LSTM layer as one op, as rnn_sequence_bidirectional() does
/// for Elman; c_n [2, B, H] besides.
SequenceResult lstm_sequence_bidirectional(const Tensor& x, const DirectionWeights& forward,
                                           const DirectionWeights& reverse, const SequenceOptions& options = {});

/// Both directions of a bidirectional GRU layer as one op, as rnn_sequence_bidirectional() does
/// for Elman.
SequenceResult gru_sequence_bidirectional(const Tensor& x, const DirectionWeights& forward,
                                          const DirectionWeights& reverse, const SequenceOptions& options = {});

/// @}
}  // namespace tapegrad
