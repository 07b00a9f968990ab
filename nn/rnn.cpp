// tapegrad::nn: RNNCell and RNN, unrolled on the tape. Per layer and direction, the input
// projection of all time steps is one GEMM (linear over [T, B, in]); each step then adds the
// recurrent product and applies the nonlinearity. Variable lengths are handled by masking the
// state update, which keeps the gradient exact: a padded step passes the state through untouched.
#include "rnn.hpp"

#include <cmath>

#include <fmt/format.h>

#include "../autograd/ops.hpp"
#include "../autograd/random.hpp"

namespace tapegrad::nn {

namespace {
const char* act_name(Nonlinearity n) { return n == Nonlinearity::tanh ? "tanh" : "relu"; }
Tensor activate(Nonlinearity n, const Tensor& x) { return n == Nonlinearity::tanh ? tanh(x) : relu(x); }
Tensor init_uniform(std::size_t hidden, const Shape& shape) {
    const double k = 1.0 / std::sqrt(static_cast<double>(hidden));
    return uniform(shape, -k, k);
}
}  // namespace

// ---- RNNCell ------------------------------------------------------------------------------------
RNNCell::RNNCell(std::size_t in, std::size_t hidden, Nonlinearity act, bool bias)
    : input_size(in), hidden_size(hidden), nonlinearity(act) {
    if (in == 0 || hidden == 0)
        throw ValueError(fmt::format("RNNCell: input_size {} and hidden_size {} must be positive", in, hidden));
    weight_ih = register_parameter("weight_ih", init_uniform(hidden, {hidden, in}));
    weight_hh = register_parameter("weight_hh", init_uniform(hidden, {hidden, hidden}));
    if (bias) {
        bias_ih = register_parameter("bias_ih", init_uniform(hidden, {hidden}));
        bias_hh = register_parameter("bias_hh", init_uniform(hidden, {hidden}));
    }
}

Tensor RNNCell::forward(const Tensor& x, const Tensor& h) const {
    if (!x.defined() || x.dim() != 2 || x.size(1) != input_size)
        throw ShapeError(fmt::format("RNNCell: input must be [batch, {}], got {}", input_size,
                                     x.defined() ? shape_str(x.shape()) : "undefined"));
    const Shape hs{x.size(0), hidden_size};
    if (h.defined() && h.shape() != hs)
        throw ShapeError(fmt::format("RNNCell: hidden state must be {}, got {}", shape_str(hs), shape_str(h.shape())));
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
RNN::RNN(const RNNOptions& o) : options(o) {
    if (o.input_size == 0 || o.hidden_size == 0 || o.num_layers == 0)
        throw ValueError(fmt::format("RNN: input_size {}, hidden_size {} and num_layers {} must be positive",
                                     o.input_size, o.hidden_size, o.num_layers));
    if (!(o.dropout >= 0.0 && o.dropout <= 1.0))
        throw ValueError(fmt::format("RNN: dropout {} is not a probability in [0, 1]", o.dropout));
    const std::size_t H = o.hidden_size, D = num_directions();
    for (std::size_t l = 0; l < o.num_layers; ++l)
        for (std::size_t d = 0; d < D; ++d) {
            const std::size_t in = l == 0 ? o.input_size : H * D;
            const std::string sfx = fmt::format("_l{}{}", l, d == 1 ? "_reverse" : "");
            Weights w;
            w.w_ih = register_parameter("weight_ih" + sfx, init_uniform(H, {H, in}));
            w.w_hh = register_parameter("weight_hh" + sfx, init_uniform(H, {H, H}));
            if (o.bias) {
                w.b_ih = register_parameter("bias_ih" + sfx, init_uniform(H, {H}));
                w.b_hh = register_parameter("bias_hh" + sfx, init_uniform(H, {H}));
            }
            weights_.push_back(w);
        }
}

std::string RNN::extra_repr() const {
    std::string s = fmt::format("{}, {}", options.input_size, options.hidden_size);
    if (options.num_layers != 1) s += fmt::format(", num_layers={}", options.num_layers);
    if (options.nonlinearity != Nonlinearity::tanh) s += ", nonlinearity=relu";
    if (!options.bias) s += ", bias=false";
    if (options.batch_first) s += ", batch_first=true";
    if (options.dropout != 0.0) s += fmt::format(", dropout={}", options.dropout);
    if (options.bidirectional) s += ", bidirectional=true";
    return s;
}

namespace {
// Per-step masks for variable lengths: mask[t] is [B, 1], 1 where step t is inside the sequence.
// full[t] is true when no sequence is padded at t, so that step needs no masking at all.
struct StepMasks {
    std::vector<Tensor> keep, drop;  // drop = 1 - keep
    std::vector<bool> full;
    bool any() const { return !keep.empty(); }
};

StepMasks make_masks(const std::vector<std::int64_t>& lengths, std::size_t T, std::size_t B, DType dtype) {
    StepMasks m;
    if (lengths.empty()) return m;
    for (std::size_t t = 0; t < T; ++t) {
        Tensor keep = zeros({B, 1}, dtype), drop = zeros({B, 1}, dtype);
        bool full = true;
        std::visit(
            [&](auto& k) {
                auto& dr = std::get<std::decay_t<decltype(k)>>(drop.mutable_array());
                for (std::size_t b = 0; b < B; ++b) {
                    const bool in = static_cast<std::int64_t>(t) < lengths[b];
                    k.data()[b] = in ? 1 : 0;
                    dr.data()[b] = in ? 0 : 1;
                    full = full && in;
                }
            },
            keep.mutable_array());
        m.keep.push_back(keep);
        m.drop.push_back(drop);
        m.full.push_back(full);
    }
    return m;
}
}  // namespace

RNNResult RNN::forward(const Tensor& input, const Tensor& h0, const std::vector<std::int64_t>& lengths) const {
    const RNNOptions& o = options;
    const std::size_t H = o.hidden_size, D = num_directions(), L = o.num_layers;
    if (!input.defined() || input.dim() != 3)
        throw ShapeError(fmt::format("RNN: input must have 3 axes ({}), got {}",
                                     o.batch_first ? "[batch, time, features]" : "[time, batch, features]",
                                     input.defined() ? shape_str(input.shape()) : "undefined"));
    if (input.size(-1) != o.input_size)
        throw ShapeError(fmt::format("RNN: input.size(-1) must be equal to input_size. Expected {}, got {} (input {})",
                                     o.input_size, input.size(-1), shape_str(input.shape())));
    if (input.dtype() != dtype())
        throw DTypeError(fmt::format("RNN: input is {} but the parameters are {}; convert one with .to()",
                                     dtype_name(input.dtype()), dtype_name(dtype())));
    Tensor x = o.batch_first ? transpose(input, 0, 1) : input;  // [T, B, F]
    const std::size_t T = x.size(0), B = x.size(1);
    if (T == 0) throw ShapeError(fmt::format("RNN: the sequence is empty (input {})", shape_str(input.shape())));
    if (B == 0) throw ShapeError(fmt::format("RNN: the batch is empty (input {})", shape_str(input.shape())));
    if (!lengths.empty()) {
        if (lengths.size() != B)
            throw ShapeError(fmt::format("RNN: {} lengths given for a batch of {}", lengths.size(), B));
        for (std::size_t b = 0; b < B; ++b)
            if (lengths[b] < 1 || lengths[b] > static_cast<std::int64_t>(T))
                throw ValueError(fmt::format("RNN: lengths[{}] = {} is out of range: each length must be in [1, {}] "
                                             "(the padded sequence length)",
                                             b, lengths[b], T));
    }
    const Shape h0_shape{L * D, B, H};
    if (h0.defined()) {
        if (h0.shape() != h0_shape)
            throw ShapeError(fmt::format("RNN: h0 must be {} (num_layers*num_directions, batch, hidden), got {}",
                                         shape_str(h0_shape), shape_str(h0.shape())));
        if (h0.dtype() != dtype())
            throw DTypeError(fmt::format("RNN: h0 is {} but the parameters are {}", dtype_name(h0.dtype()),
                                         dtype_name(dtype())));
    }
    const StepMasks masks = make_masks(lengths, T, B, dtype());
    const Tensor zero_state = zeros({B, H}, dtype());

    std::vector<Tensor> finals;  // layer * D + direction
    Tensor layer_in = x;
    for (std::size_t l = 0; l < L; ++l) {
        std::vector<Tensor> dir_out;
        for (std::size_t d = 0; d < D; ++d) {
            const Weights& w = weights_[l * D + d];
            Tensor h = h0.defined() ? select(h0, 0, static_cast<long>(l * D + d)) : zero_state;
            // All steps' input projections in one GEMM, with both biases folded in.
            Tensor xw = linear(layer_in, w.w_ih, w.b_ih);  // [T, B, H]
            if (w.b_hh.defined()) xw = xw + w.b_hh;
            std::vector<Tensor> outs(T);
            for (std::size_t k = 0; k < T; ++k) {
                const std::size_t t = d == 0 ? k : T - 1 - k;
                Tensor hn = activate(o.nonlinearity, select(xw, 0, static_cast<long>(t)) + linear(h, w.w_hh, Tensor()));
                if (!masks.any() || masks.full[t]) {
                    h = hn;
                    outs[t] = hn;
                } else {  // padded rows keep their state and emit zeros
                    outs[t] = hn * masks.keep[t];
                    h = outs[t] + h * masks.drop[t];
                }
            }
            finals.push_back(h);
            dir_out.push_back(stack(outs, 0));
        }
        layer_in = D == 1 ? dir_out[0] : concat(dir_out, -1);  // [T, B, D*H]
        if (l + 1 < L && o.dropout > 0.0 && is_training()) layer_in = dropout(layer_in, o.dropout, true);
    }
    Tensor output = o.batch_first ? transpose(layer_in, 0, 1) : layer_in;
    return {output, stack(finals, 0)};
}

}  // namespace tapegrad::nn
