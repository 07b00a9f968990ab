// tapegrad::nn: GRUCell and GRU. GRUCell is composed from tape ops (linear, split, sigmoid, tanh,
// mul, add). The GRU layer runs each layer and direction as one fused gru_sequence op
// (autograd/recurrent.hpp), lengths included; in anomaly mode it runs the composed cell per step
// instead, so that a message can name the step. Both give the same values and gradients
// (tests/test_ops_recurrent.cpp compares them). The sequence driver shared with RNN and LSTM
// (nn/layers/recurrent.cpp) handles layers, directions and variable lengths.
#include "gru.hpp"

#include <fmt/format.h>

#include "../../autograd/ops.hpp"
#include "detail/recurrent.hpp"

namespace tapegrad::nn {

namespace {
// gx = x W_ih^T + b_ih and gh = h W_hh^T + b_hh [B, 3H] (rows r, z, n), h [B, H] -> h' [B, H].
// gh must keep b_hh: b_hn is multiplied by r, so it cannot be folded into the input projection.
Tensor gru_update(const Tensor& gx, const Tensor& gh, const Tensor& h, std::size_t H) {
    const std::vector<Tensor> x3 = split(gx, {H, H, H}, -1), h3 = split(gh, {H, H, H}, -1);
    const Tensor r = sigmoid(x3[0] + h3[0]), z = sigmoid(x3[1] + h3[1]);
    const Tensor n = tanh(x3[2] + r * h3[2]);
    return (1.0 - z) * n + z * h;
}
}  // namespace

// ---- GRUCell ------------------------------------------------------------------------------------
GRUCell::GRUCell(std::size_t in, std::size_t hidden, bool bias) : input_size(in), hidden_size(hidden) {
    const RecurrentWeights w = detail::make_cell_weights(
        "GRUCell", in, hidden, bias, 3, [this](const std::string& n, Tensor v) { return register_parameter(n, v); });
    weight_ih = w.w_ih, weight_hh = w.w_hh, bias_ih = w.b_ih, bias_hh = w.b_hh;
}

Tensor GRUCell::forward(const Tensor& x, const Tensor& h) const {
    if (!x.defined() || x.dim() != 2 || x.size(1) != input_size)
        throw ShapeError(fmt::format("GRUCell: input must be [batch, {}], got {}", input_size,
                                     x.defined() ? shape_str(x.shape()) : "undefined"));
    if (x.dtype() != dtype())
        throw DTypeError(fmt::format("GRUCell: input is {} but the parameters are {}; convert one with .to()",
                                     dtype_name(x.dtype()), dtype_name(dtype())));
    const Shape hs{x.size(0), hidden_size};
    if (h.defined() && h.shape() != hs)
        throw ShapeError(fmt::format("GRUCell: hidden state must be {}, got {}", shape_str(hs), shape_str(h.shape())));
    if (h.defined() && h.dtype() != dtype())
        throw DTypeError(fmt::format("GRUCell: hidden state is {} but the parameters are {}", dtype_name(h.dtype()),
                                     dtype_name(dtype())));
    const Tensor h_ = h.defined() ? h : zeros(hs, dtype());
    return gru_update(linear(x, weight_ih, bias_ih), linear(h_, weight_hh, bias_hh), h_, hidden_size);
}

std::string GRUCell::extra_repr() const {
    return fmt::format("{}, {}, bias={}", input_size, hidden_size, bias_ih.defined());
}

// ---- GRU ----------------------------------------------------------------------------------------
GRU::GRU(const GRUOptions& o)
    : RecurrentLayer(RecurrentKind::gru, detail::recurrent_options_of(o)), options(o) {
    weights_ = detail::make_recurrent_weights("GRU", detail::shape_of(o), 3,
                                              [this](const std::string& n, Tensor v) { return register_parameter(n, v); });
}

std::string GRU::extra_repr() const { return detail::recurrent_repr(detail::shape_of(options)); }

GRUResult GRU::forward(const Tensor& input, const Tensor& h0, const std::vector<std::int64_t>& lengths) const {
    const GRUOptions& o = options;
    const std::size_t H = o.hidden_size;
    detail::RecurrentSpec spec{.layer = "GRU",
                               .input_size = o.input_size,
                               .hidden_size = H,
                               .num_layers = o.num_layers,
                               .num_directions = num_directions(),
                               .batch_first = o.batch_first,
                               .dropout = o.dropout,
                               .training = is_training(),
                               .dtype = dtype()};
    auto project = [&](std::size_t ld, const Tensor& in) {
        return linear(in, weights_[ld].w_ih, weights_[ld].b_ih);  // [T, B, 3H]
    };
    auto step = [&](std::size_t ld, const Tensor& xw_t, const std::vector<Tensor>& state) {
        const RecurrentWeights& w = weights_[ld];
        return std::vector<Tensor>{gru_update(xw_t, linear(state[0], w.w_hh, w.b_hh), state[0], H)};
    };
    auto sequence = [&](std::size_t ld, const Tensor& in, const std::vector<Tensor>& init, bool reverse,
                        const std::vector<std::int64_t>& len) {
        const RecurrentWeights& w = weights_[ld];
        return gru_sequence(in, init[0], w.w_ih, w.w_hh, w.b_ih, w.b_hh, {.reverse = reverse, .lengths = len});
    };
    auto both = [&](std::size_t l, const Tensor& in, const std::vector<Tensor>& init_f,
                    const std::vector<Tensor>& init_r, const std::vector<std::int64_t>& len) {
        return gru_sequence_bidirectional(in, detail::direction_weights(weights_[2 * l], init_f),
                                          detail::direction_weights(weights_[2 * l + 1], init_r), {.lengths = len});
    };
    detail::RecurrentOutput r = detail::run_recurrent(spec, input, {h0}, lengths, project, step, sequence, both);
    return {r.output, r.finals[0]};
}

RecurrentResult GRU::forward_state(const Tensor& input, const RecurrentState& state,
                                   const std::vector<std::int64_t>& lengths) const {
    GRUResult r = forward(input, state.h, lengths);
    return {std::move(r.output), {std::move(r.h_n), Tensor()}};
}

}  // namespace tapegrad::nn
