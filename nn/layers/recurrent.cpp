// tapegrad::nn: the sequence driver behind RNN, LSTM and GRU (nn/detail/recurrent.hpp). Per layer
// and direction the input projection of all steps is one GEMM; each step then runs the layer's cell
// on the tape. Variable lengths mask the state update, which keeps the gradient exact: a padded
// step passes every state through untouched and emits zeros.
#include "detail/recurrent.hpp"

#include <cmath>

#include <fmt/format.h>

#include "../../autograd/ops.hpp"
#include "../../autograd/random.hpp"
#include "../../autograd/tape.hpp"

namespace tapegrad::nn::detail {

Tensor init_recurrent(std::size_t hidden, const Shape& shape) {
    const double k = 1.0 / std::sqrt(static_cast<double>(hidden));
    return uniform(shape, -k, k);
}

namespace {
// weight_ih<sfx> [G, in], weight_hh<sfx> [G, H], bias_ih<sfx>, bias_hh<sfx> [G], in that order (the
// order fixes which draws of the generator each gets, so it is part of "same seed, same weights").
RecurrentWeights register_weights(const std::string& sfx, std::size_t in, std::size_t H, std::size_t G, bool bias,
                                  const RegisterFn& reg) {
    RecurrentWeights w;
    w.w_ih = reg("weight_ih" + sfx, init_recurrent(H, {G, in}));
    w.w_hh = reg("weight_hh" + sfx, init_recurrent(H, {G, H}));
    if (bias) {
        w.b_ih = reg("bias_ih" + sfx, init_recurrent(H, {G}));
        w.b_hh = reg("bias_hh" + sfx, init_recurrent(H, {G}));
    }
    return w;
}
}  // namespace

RecurrentWeights make_cell_weights(const std::string& cell, std::size_t in, std::size_t hidden, bool bias,
                                   std::size_t gates, const RegisterFn& reg) {
    if (in == 0 || hidden == 0)
        throw ValueError(fmt::format("{}: input_size {} and hidden_size {} must be positive", cell, in, hidden));
    return register_weights("", in, hidden, gates * hidden, bias, reg);
}

std::vector<RecurrentWeights> make_recurrent_weights(const std::string& layer, const RecurrentShape& o,
                                                     std::size_t gates, const RegisterFn& reg) {
    if (o.input_size == 0 || o.hidden_size == 0 || o.num_layers == 0)
        throw ValueError(fmt::format("{}: input_size {}, hidden_size {} and num_layers {} must be positive", layer,
                                     o.input_size, o.hidden_size, o.num_layers));
    if (!(o.dropout >= 0.0 && o.dropout <= 1.0))
        throw ValueError(fmt::format("{}: dropout {} is not a probability in [0, 1]", layer, o.dropout));
    const std::size_t H = o.hidden_size, D = o.bidirectional ? 2 : 1, G = gates * H;
    std::vector<RecurrentWeights> out;
    for (std::size_t l = 0; l < o.num_layers; ++l)
        for (std::size_t d = 0; d < D; ++d) {
            const std::size_t in = l == 0 ? o.input_size : H * D;
            const std::string sfx = fmt::format("_l{}{}", l, d == 1 ? "_reverse" : "");
            out.push_back(register_weights(sfx, in, H, G, o.bias, reg));
        }
    return out;
}

std::string recurrent_repr(const RecurrentShape& o, const std::string& extra) {
    std::string s = fmt::format("{}, {}", o.input_size, o.hidden_size);
    if (o.num_layers != 1) s += fmt::format(", num_layers={}", o.num_layers);
    if (!extra.empty()) s += ", " + extra;
    if (!o.bias) s += ", bias=false";
    if (o.batch_first) s += ", batch_first=true";
    if (o.dropout != 0.0) s += fmt::format(", dropout={}", o.dropout);
    if (o.bidirectional) s += ", bidirectional=true";
    return s;
}

DirectionWeights direction_weights(const RecurrentWeights& w, const std::vector<Tensor>& init) {
    return {w.w_ih, w.w_hh, w.b_ih, w.b_hh, init.empty() ? Tensor() : init[0], init.size() > 1 ? init[1] : Tensor()};
}

namespace {
// Per-step masks for variable lengths: keep[t] is [B, 1], 1 where step t is inside the sequence.
// full[t] is true when no sequence is padded at t, so that step needs no masking at all.
struct StepMasks {
    std::vector<Tensor> keep;
    std::vector<bool> full;
    bool any() const { return !keep.empty(); }
};

StepMasks make_masks(const std::vector<std::int64_t>& lengths, std::size_t T, std::size_t B, DType dtype) {
    StepMasks m;
    if (lengths.empty()) return m;
    for (std::size_t t = 0; t < T; ++t) {
        Tensor keep = zeros({B, 1}, dtype);
        bool full = true;
        std::visit(
            [&](auto& k) {
                for (std::size_t b = 0; b < B; ++b) {
                    const bool in = static_cast<std::int64_t>(t) < lengths[b];
                    k.data()[b] = in ? 1 : 0;
                    full = full && in;
                }
            },
            keep.mutable_array());
        m.keep.push_back(keep);
        m.full.push_back(full);
    }
    return m;
}
}  // namespace

RecurrentOutput run_recurrent(const RecurrentSpec& s, const Tensor& input, const std::vector<Tensor>& init,
                              const std::vector<std::int64_t>& lengths, const ProjectFn& project,
                              const StepFn& step, const SequenceFn& sequence, const BothFn& both) {
    const std::size_t H = s.hidden_size, D = s.num_directions, L = s.num_layers, S = s.state_names.size();
    const char* name = s.layer.c_str();
    if (!input.defined() || input.dim() != 3)
        throw ShapeError(fmt::format("{}: input must have 3 axes ({}), got {}", name,
                                     s.batch_first ? "[batch, time, features]" : "[time, batch, features]",
                                     input.defined() ? shape_str(input.shape()) : "undefined"));
    if (input.size(-1) != s.input_size)
        throw ShapeError(fmt::format("{}: input.size(-1) must be equal to input_size. Expected {}, got {} (input {})",
                                     name, s.input_size, input.size(-1), shape_str(input.shape())));
    if (input.dtype() != s.dtype)
        throw DTypeError(fmt::format("{}: input is {} but the parameters are {}; convert one with .to()", name,
                                     dtype_name(input.dtype()), dtype_name(s.dtype)));
    Tensor x = s.batch_first ? transpose(input, 0, 1) : input;  // [T, B, F]
    const std::size_t T = x.size(0), B = x.size(1);
    if (T == 0) throw ShapeError(fmt::format("{}: the sequence is empty (input {})", name, shape_str(input.shape())));
    if (B == 0) throw ShapeError(fmt::format("{}: the batch is empty (input {})", name, shape_str(input.shape())));
    if (!lengths.empty()) {
        if (lengths.size() != B)
            throw ShapeError(fmt::format("{}: {} lengths given for a batch of {}", name, lengths.size(), B));
        for (std::size_t b = 0; b < B; ++b)
            if (lengths[b] < 1 || lengths[b] > static_cast<std::int64_t>(T))
                throw ValueError(fmt::format("{}: lengths[{}] = {} is out of range: each length must be in [1, {}] "
                                             "(the padded sequence length)",
                                             name, b, lengths[b], T));
    }
    const Shape state_shape{L * D, B, H};
    for (std::size_t i = 0; i < S && i < init.size(); ++i) {
        const Tensor& st = init[i];
        if (!st.defined()) continue;
        const char* sn = s.state_names[i].c_str();
        if (st.shape() != state_shape)
            throw ShapeError(fmt::format("{}: {} must be {} (num_layers*num_directions, batch, hidden), got {}", name,
                                         sn, shape_str(state_shape), shape_str(st.shape())));
        if (st.dtype() != s.dtype)
            throw DTypeError(fmt::format("{}: {} is {} but the parameters are {}", name, sn, dtype_name(st.dtype()),
                                         dtype_name(s.dtype)));
    }
    const bool fused = sequence && !anomaly_mode();
    const StepMasks masks = fused ? StepMasks{} : make_masks(lengths, T, B, s.dtype);
    const Tensor zero_state = fused ? Tensor() : zeros({B, H}, s.dtype);

    std::vector<std::vector<Tensor>> finals(S);  // per state, index layer * D + direction
    // Layer l's output as the next layer's input: dropped out between layers when training.
    auto next_input = [&](std::size_t l, const Tensor& out) {
        return l + 1 < L && s.dropout > 0.0 && s.training ? dropout(out, s.dropout, true) : out;
    };
    // State i of layer and direction ld as given in init, or `otherwise` when not given.
    auto initial = [&](std::size_t ld, std::size_t i, const Tensor& otherwise) {
        return i < init.size() && init[i].defined() ? select(init[i], 0, static_cast<long>(ld)) : otherwise;
    };
    Tensor layer_in = x;
    for (std::size_t l = 0; l < L; ++l) {
        if (fused && D == 2 && both) {  // both directions as one op, at once where threads allow
            std::vector<Tensor> st[2] = {std::vector<Tensor>(S), std::vector<Tensor>(S)};
            for (std::size_t d = 0; d < 2; ++d)
                for (std::size_t i = 0; i < S; ++i) st[d][i] = initial(l * 2 + d, i, Tensor());
            SequenceResult r = both(l, layer_in, st[0], st[1], lengths);
            for (std::size_t d = 0; d < 2; ++d) {
                finals[0].push_back(select(r.h_n, 0, static_cast<long>(d)));
                if (S > 1) finals[1].push_back(select(r.c_n, 0, static_cast<long>(d)));
            }
            layer_in = next_input(l, r.output);
            continue;
        }
        std::vector<Tensor> dir_out;
        for (std::size_t d = 0; d < D; ++d) {
            const std::size_t ld = l * D + d;
            if (fused) {  // no initial state: undefined, which the fused ops read as zeros
                std::vector<Tensor> st(S);
                for (std::size_t i = 0; i < S; ++i) st[i] = initial(ld, i, Tensor());
                SequenceResult r = sequence(ld, layer_in, st, d == 1, lengths);
                finals[0].push_back(r.h_n);
                if (S > 1) finals[1].push_back(r.c_n);
                dir_out.push_back(std::move(r.output));
                continue;
            }
            std::vector<Tensor> state(S);
            for (std::size_t i = 0; i < S; ++i) state[i] = initial(ld, i, zero_state);
            // Anomaly-mode messages name the layer, direction and step that an op ran in.
            Where at{name, static_cast<long>(l), d == 0 ? "forward" : "reverse"};
            OpScope layer_scope(at);
            const Tensor xw = project(ld, layer_in);  // [T, B, G]
            std::vector<Tensor> outs(T);
            for (std::size_t k = 0; k < T; ++k) {
                const std::size_t t = d == 0 ? k : T - 1 - k;
                at.step = static_cast<long>(t);
                OpScope step_scope(at);
                std::vector<Tensor> next = step(ld, select(xw, 0, static_cast<long>(t)), state);
                if (!masks.any() || masks.full[t]) {
                    outs[t] = next[0];
                    state = std::move(next);
                } else {  // padded rows keep their states and emit zeros
                    // Selected, not multiplied by 0/1: a NaN or Inf a padded step computed from its
                    // padding must not reach the output or the state (NaN * 0 is NaN).
                    outs[t] = where(masks.keep[t], next[0], 0.0);
                    for (std::size_t i = 0; i < S; ++i) state[i] = where(masks.keep[t], next[i], state[i]);
                }
            }
            for (std::size_t i = 0; i < S; ++i) finals[i].push_back(state[i]);
            dir_out.push_back(stack(outs, 0));
        }
        layer_in = next_input(l, D == 1 ? dir_out[0] : concat(dir_out, -1));  // [T, B, D*H]
    }
    RecurrentOutput r;
    r.output = s.batch_first ? transpose(layer_in, 0, 1) : layer_in;
    for (auto& f : finals) r.finals.push_back(stack(f, 0));
    return r;
}

}  // namespace tapegrad::nn::detail
