// tapegrad::nn: RecurrentLayer's checks of a state against its layer, the packed form of a state,
// and make_recurrent. The layers' own forwards do the work (nn/layers/rnn.cpp, nn/layers/lstm.cpp, nn/layers/gru.cpp).
#include "recurrent_layer.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "../../autograd/ops.hpp"
#include "gru.hpp"
#include "lstm.hpp"
#include "rnn.hpp"

namespace tapegrad::nn {

namespace {
std::string shape_or_undefined(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; }
}  // namespace

RecurrentState RecurrentState::detach() const {
    return {h.defined() ? h.detach() : Tensor(), c.defined() ? c.detach() : Tensor()};
}

const char* recurrent_kind_name(RecurrentKind kind) {
    switch (kind) {
        case RecurrentKind::rnn: return "rnn";
        case RecurrentKind::lstm: return "lstm";
        case RecurrentKind::gru: return "gru";
    }
    throw std::logic_error("tapegrad internal error: recurrent_kind_name of an unknown kind");
}

RecurrentKind parse_recurrent_kind(const std::string& name) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    for (RecurrentKind k : {RecurrentKind::rnn, RecurrentKind::lstm, RecurrentKind::gru})
        if (lower == recurrent_kind_name(k)) return k;
    throw ValueError(fmt::format("make_recurrent: unknown recurrent layer '{}': expected rnn, lstm or gru", name));
}

// The interface is stricter than the typed forwards, which read a missing h0 or c0 as zeros: a
// state is either a whole state of this layer or none, because half an LSTM state, or a cell state
// given to a GRU, almost always means a state carried in from another layer.
RecurrentResult RecurrentLayer::forward(const Tensor& input, const RecurrentState& state,
                                        const std::vector<std::int64_t>& lengths) const {
    if (!has_cell_state() && state.c.defined())
        throw ValueError(fmt::format("{}: the state has a cell state c {}, but only an LSTM has one; the {} state "
                                     "is h alone (h {})",
                                     type_name(), shape_str(state.c.shape()), type_name(),
                                     shape_or_undefined(state.h)));
    if (has_cell_state() && state.h.defined() != state.c.defined())
        throw ValueError(fmt::format("{}: the state has h {} and c {}; an LSTM's state is (h, c): give both, or "
                                     "neither for zeros",
                                     type_name(), shape_or_undefined(state.h), shape_or_undefined(state.c)));
    return forward_state(input, state, lengths);
}

RecurrentState RecurrentLayer::zero_state(std::size_t batch) const {
    const Shape s{options_.num_layers * num_directions(), batch, options_.hidden_size};
    return {zeros(s, dtype()), has_cell_state() ? zeros(s, dtype()) : Tensor()};
}

Tensor RecurrentLayer::pack_state(const RecurrentState& state) const {
    if (!has_cell_state()) {
        if (state.c.defined())
            throw ValueError(fmt::format("{}: pack_state: the state has a cell state c {}, but only an LSTM has one",
                                         type_name(), shape_str(state.c.shape())));
        return state.h;
    }
    if (!state.defined()) return Tensor();
    if (!state.h.defined() || !state.c.defined() || state.h.shape() != state.c.shape())
        throw ShapeError(fmt::format("{}: pack_state: h and c must both be [num_layers*D, batch, hidden], got h {} "
                                     "and c {}",
                                     type_name(), shape_or_undefined(state.h), shape_or_undefined(state.c)));
    return concat({state.h, state.c}, 0);
}

RecurrentState RecurrentLayer::unpack_state(const Tensor& packed) const {
    if (!packed.defined()) return {};
    const std::size_t rows = options_.num_layers * num_directions(), H = options_.hidden_size;
    const std::size_t parts = has_cell_state() ? 2 : 1;
    if (packed.dim() != 3 || packed.size(0) != parts * rows || packed.size(2) != H)
        throw ShapeError(fmt::format("{}: unpack_state: a packed state must be [{}, batch, {}] ({}), got {}",
                                     type_name(), parts * rows, H,
                                     has_cell_state()
                                         ? fmt::format("h and c, each [num_layers*D = {}, batch, {}], stacked along "
                                                       "axis 0",
                                                       rows, H)
                                         : fmt::format("h, num_layers*D = {} rows", rows),
                                     shape_str(packed.shape())));
    if (!has_cell_state()) return {packed, Tensor()};
    const std::vector<Tensor> hc = split(packed, {rows, rows}, 0);
    return {hc[0], hc[1]};
}

std::unique_ptr<RecurrentLayer> make_recurrent(RecurrentKind kind, const RecurrentOptions& o) {
    if (kind != RecurrentKind::rnn && o.nonlinearity != Nonlinearity::tanh)
        throw ValueError(fmt::format("make_recurrent: nonlinearity relu is an option of the Elman RNN only, not of "
                                     "the {}",
                                     kind == RecurrentKind::lstm ? "LSTM" : "GRU"));
    switch (kind) {
        case RecurrentKind::rnn:
            return std::make_unique<RNN>(RNNOptions{.input_size = o.input_size,
                                                    .hidden_size = o.hidden_size,
                                                    .num_layers = o.num_layers,
                                                    .nonlinearity = o.nonlinearity,
                                                    .bias = o.bias,
                                                    .batch_first = o.batch_first,
                                                    .dropout = o.dropout,
                                                    .bidirectional = o.bidirectional});
        case RecurrentKind::lstm:
            return std::make_unique<LSTM>(LSTMOptions{.input_size = o.input_size,
                                                      .hidden_size = o.hidden_size,
                                                      .num_layers = o.num_layers,
                                                      .bias = o.bias,
                                                      .batch_first = o.batch_first,
                                                      .dropout = o.dropout,
                                                      .bidirectional = o.bidirectional});
        case RecurrentKind::gru:
            return std::make_unique<GRU>(GRUOptions{.input_size = o.input_size,
                                                    .hidden_size = o.hidden_size,
                                                    .num_layers = o.num_layers,
                                                    .bias = o.bias,
                                                    .batch_first = o.batch_first,
                                                    .dropout = o.dropout,
                                                    .bidirectional = o.bidirectional});
    }
    throw std::logic_error("tapegrad internal error: make_recurrent of an unknown kind");
}

std::unique_ptr<RecurrentLayer> make_recurrent(const std::string& kind, const RecurrentOptions& options) {
    return make_recurrent(parse_recurrent_kind(kind), options);
}

}  // namespace tapegrad::nn
