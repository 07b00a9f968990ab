// tapegrad::nn: RNNCell and RNN, unrolled on the tape. The sequence driver shared with LSTM and GRU
// (nn/layers/recurrent.cpp) handles layers, directions and variable lengths. Each layer and direction is
// one fused rnn_sequence op (autograd/recurrent.hpp), with or without lengths; in anomaly mode it
// is composed per step instead, so that a message can name the step: the input projection of all
// steps as one GEMM (linear over [T, B, in]), then per step the recurrent product and the
// nonlinearity. Both give the same values and gradients (tests/test_ops_recurrent.cpp compares them).
#include "rnn.hpp"

#include <fmt/format.h>

#include "../../autograd/ops.hpp"
#include "detail/recurrent.hpp"

namespace tapegrad::nn {

namespace {
const char* act_name(Nonlinearity n) { return n == Nonlinearity::tanh ? "tanh" : "relu"; }
Tensor activate(Nonlinearity n, const Tensor& x) { return n == Nonlinearity::tanh ? tanh(x) : relu(x); }
}  // namespace

// ---- RNNCell ------------------------------------------------------------------------------------
RNNCell::RNNCell(std::size_t in, std::size_t hidden, Nonlinearity act, bool bias)
    : input_size(in), hidden_size(hidden), nonlinearity(act) {
    const RecurrentWeights w = detail::make_cell_weights(
        "RNNCell", in, hidden, bias, 1, [this](const std::string& n, Tensor v) { return register_parameter(n, v); });
    weight_ih = w.w_ih, weight_hh = w.w_hh, bias_ih = w.b_ih, bias_hh = w.b_hh;
}

Tensor RNNCell::forward(const Tensor& x, const Tensor& h) const {
    if (!x.defined() || x.dim() != 2 || x.size(1) != input_size)
        throw ShapeError(fmt::format("RNNCell: input must be [batch, {}], got {}", input_size,
                                     x.defined() ? shape_str(x.shape()) : "undefined"));
    const Shape hs{x.size(0), hidden_size};
    if (h.defined() && h.shape() != hs)
        throw ShapeError(fmt::format("RNNCell: hidden state must be {}, got {}", shape_str(hs), shape_str(h.shape())));
    if (x.dtype() != dtype())
        throw DTypeError(fmt::format("RNNCell: input is {} but the parameters are {}; convert one with .to()",
                                     dtype_name(x.dtype()), dtype_name(dtype())));
    if (h.defined() && h.dtype() != dtype())
        throw DTypeError(fmt::format("RNNCell: hidden state is {} but the parameters are {}", dtype_name(h.dtype()),
                                     dtype_name(dtype())));
    Tensor pre = linear(x, weight_ih, bias_ih);
    if (h.defined()) pre = pre + linear(h, weight_hh, bias_hh);
    else if (bias_hh.defined()) pre = pre + bias_hh;  // h = 0: only its bias remains
    return activate(nonlinearity, pre);
}

std::string RNNCell::extra_repr() const {
    return fmt::format("{}, {}, nonlinearity={}, bias={}", input_size, hidden_size, act_name(nonlinearity),
                       bias_ih.defined());
}

// ---- RNN ----------------------------------------------------------------------------------------
RNN::RNN(const RNNOptions& o)
    : RecurrentLayer(RecurrentKind::rnn, detail::recurrent_options_of(o, o.nonlinearity)), options(o) {
    weights_ = detail::make_recurrent_weights("RNN", detail::shape_of(o), 1,
                                              [this](const std::string& n, Tensor v) { return register_parameter(n, v); });
}

std::string RNN::extra_repr() const {
    return detail::recurrent_repr(detail::shape_of(options),
                                  options.nonlinearity == Nonlinearity::relu ? "nonlinearity=relu" : "");
}

RNNResult RNN::forward(const Tensor& input, const Tensor& h0, const std::vector<std::int64_t>& lengths) const {
    const RNNOptions& o = options;
    detail::RecurrentSpec spec{.layer = "RNN",
                               .input_size = o.input_size,
                               .hidden_size = o.hidden_size,
                               .num_layers = o.num_layers,
                               .num_directions = num_directions(),
                               .batch_first = o.batch_first,
                               .dropout = o.dropout,
                               .training = is_training(),
                               .dtype = dtype()};
    // Both biases are folded into the all-steps projection: the step adds only h W_hh^T.
    auto project = [&](std::size_t ld, const Tensor& in) {
        const RecurrentWeights& w = weights_[ld];
        Tensor xw = linear(in, w.w_ih, w.b_ih);  // [T, B, H]
        return w.b_hh.defined() ? xw + w.b_hh : xw;
    };
    auto step = [&](std::size_t ld, const Tensor& xw_t, const std::vector<Tensor>& state) {
        return std::vector<Tensor>{activate(o.nonlinearity, xw_t + linear(state[0], weights_[ld].w_hh, Tensor()))};
    };
    auto sequence = [&](std::size_t ld, const Tensor& in, const std::vector<Tensor>& init, bool reverse,
                        const std::vector<std::int64_t>& len) {
        const RecurrentWeights& w = weights_[ld];
        return rnn_sequence(in, init[0], w.w_ih, w.w_hh, w.b_ih, w.b_hh,
                            {.relu = o.nonlinearity == Nonlinearity::relu, .reverse = reverse, .lengths = len});
    };
    auto both = [&](std::size_t l, const Tensor& in, const std::vector<Tensor>& init_f,
                    const std::vector<Tensor>& init_r, const std::vector<std::int64_t>& len) {
        return rnn_sequence_bidirectional(in, detail::direction_weights(weights_[2 * l], init_f),
                                          detail::direction_weights(weights_[2 * l + 1], init_r),
                                          {.relu = o.nonlinearity == Nonlinearity::relu, .lengths = len});
    };
    detail::RecurrentOutput r = detail::run_recurrent(spec, input, {h0}, lengths, project, step, sequence, both);
    return {r.output, r.finals[0]};
}

RecurrentResult RNN::forward_state(const Tensor& input, const RecurrentState& state,
                                   const std::vector<std::int64_t>& lengths) const {
    RNNResult r = forward(input, state.h, lengths);
    return {std::move(r.output), {std::move(r.h_n), Tensor()}};
}

}  // namespace tapegrad::nn
