// tapegrad::nn: LSTMCell and LSTM. LSTMCell is composed from tape ops (linear, split, sigmoid, tanh,
// mul, add). The LSTM layer runs each layer and direction as one fused lstm_sequence op
// (autograd/recurrent.hpp), lengths included; in anomaly mode it runs the composed cell per step
// instead, so that a message can name the step. Both give the same values and gradients
// (tests/test_ops_recurrent.cpp compares them). The sequence driver shared with RNN and GRU
// (nn/layers/recurrent.cpp) handles layers, directions and variable lengths.
#include "lstm.hpp"

#include <fmt/format.h>

#include "../../autograd/ops.hpp"
#include "detail/recurrent.hpp"

namespace tapegrad::nn {

namespace {
// gates [B, 4H] (i, f, g, o pre-activations, both biases included), c [B, H] -> (h', c').
LSTMState lstm_update(const Tensor& gates, const Tensor& c, std::size_t H) {
    const std::vector<Tensor> g = split(gates, {H, H, H, H}, -1);
    const Tensor i = sigmoid(g[0]), f = sigmoid(g[1]), cand = tanh(g[2]), o = sigmoid(g[3]);
    const Tensor c_next = c.defined() ? f * c + i * cand : i * cand;  // c undefined: a zero cell
    return {o * tanh(c_next), c_next};
}
}  // namespace

// ---- LSTMCell -----------------------------------------------------------------------------------
LSTMCell::LSTMCell(std::size_t in, std::size_t hidden, bool bias) : input_size(in), hidden_size(hidden) {
    const RecurrentWeights w = detail::make_cell_weights(
        "LSTMCell", in, hidden, bias, 4, [this](const std::string& n, Tensor v) { return register_parameter(n, v); });
    weight_ih = w.w_ih, weight_hh = w.w_hh, bias_ih = w.b_ih, bias_hh = w.b_hh;
}

LSTMState LSTMCell::forward(const Tensor& x, const Tensor& h, const Tensor& c) const {
    if (!x.defined() || x.dim() != 2 || x.size(1) != input_size)
        throw ShapeError(fmt::format("LSTMCell: input must be [batch, {}], got {}", input_size,
                                     x.defined() ? shape_str(x.shape()) : "undefined"));
    if (x.dtype() != dtype())
        throw DTypeError(fmt::format("LSTMCell: input is {} but the parameters are {}; convert one with .to()",
                                     dtype_name(x.dtype()), dtype_name(dtype())));
    const Shape hs{x.size(0), hidden_size};
    for (const auto& [name, t] : {std::pair<const char*, const Tensor&>{"hidden state h", h}, {"cell state c", c}}) {
        if (t.defined() && t.shape() != hs)
            throw ShapeError(fmt::format("LSTMCell: {} must be {}, got {}", name, shape_str(hs), shape_str(t.shape())));
        if (t.defined() && t.dtype() != dtype())
            throw DTypeError(fmt::format("LSTMCell: {} is {} but the parameters are {}", name, dtype_name(t.dtype()),
                                         dtype_name(dtype())));
    }
    Tensor gates = linear(x, weight_ih, bias_ih);  // [B, 4H]
    if (h.defined()) gates = gates + linear(h, weight_hh, bias_hh);
    else if (bias_hh.defined()) gates = gates + bias_hh;  // h = 0: only its bias remains
    return lstm_update(gates, c, hidden_size);
}

std::string LSTMCell::extra_repr() const {
    return fmt::format("{}, {}, bias={}", input_size, hidden_size, bias_ih.defined());
}

// ---- LSTM ---------------------------------------------------------------------------------------
LSTM::LSTM(const LSTMOptions& o)
    : RecurrentLayer(RecurrentKind::lstm, detail::recurrent_options_of(o)), options(o) {
    weights_ = detail::make_recurrent_weights("LSTM", detail::shape_of(o), 4,
                                              [this](const std::string& n, Tensor v) { return register_parameter(n, v); });
}

std::string LSTM::extra_repr() const { return detail::recurrent_repr(detail::shape_of(options)); }

LSTMResult LSTM::forward(const Tensor& input, const Tensor& h0, const Tensor& c0,
                         const std::vector<std::int64_t>& lengths) const {
    const LSTMOptions& o = options;
    const std::size_t H = o.hidden_size;
    detail::RecurrentSpec spec{.layer = "LSTM",
                               .input_size = o.input_size,
                               .hidden_size = H,
                               .num_layers = o.num_layers,
                               .num_directions = num_directions(),
                               .batch_first = o.batch_first,
                               .dropout = o.dropout,
                               .training = is_training(),
                               .dtype = dtype(),
                               .state_names = {"h0", "c0"}};
    // Both biases are folded into the all-steps projection: the step adds only h W_hh^T.
    auto project = [&](std::size_t ld, const Tensor& in) {
        const RecurrentWeights& w = weights_[ld];
        Tensor xw = linear(in, w.w_ih, w.b_ih);  // [T, B, 4H]
        return w.b_hh.defined() ? xw + w.b_hh : xw;
    };
    auto step = [&](std::size_t ld, const Tensor& xw_t, const std::vector<Tensor>& state) {
        const LSTMState next = lstm_update(xw_t + linear(state[0], weights_[ld].w_hh, Tensor()), state[1], H);
        return std::vector<Tensor>{next.h, next.c};
    };
    auto sequence = [&](std::size_t ld, const Tensor& in, const std::vector<Tensor>& init, bool reverse,
                        const std::vector<std::int64_t>& len) {
        const RecurrentWeights& w = weights_[ld];
        return lstm_sequence(in, init[0], init[1], w.w_ih, w.w_hh, w.b_ih, w.b_hh, {.reverse = reverse, .lengths = len});
    };
    auto both = [&](std::size_t l, const Tensor& in, const std::vector<Tensor>& init_f,
                    const std::vector<Tensor>& init_r, const std::vector<std::int64_t>& len) {
        return lstm_sequence_bidirectional(in, detail::direction_weights(weights_[2 * l], init_f),
                                           detail::direction_weights(weights_[2 * l + 1], init_r), {.lengths = len});
    };
    detail::RecurrentOutput r = detail::run_recurrent(spec, input, {h0, c0}, lengths, project, step, sequence, both);
    return {r.output, r.finals[0], r.finals[1]};
}

RecurrentResult LSTM::forward_state(const Tensor& input, const RecurrentState& state,
                                    const std::vector<std::int64_t>& lengths) const {
    LSTMResult r = forward(input, state.h, state.c, lengths);
    return {std::move(r.output), {std::move(r.h_n), std::move(r.c_n)}};
}

}  // namespace tapegrad::nn
