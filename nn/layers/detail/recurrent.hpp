// tapegrad::nn internal: the sequence driver shared by RNN, LSTM and GRU. It validates the input,
// initial states and lengths, runs every layer and direction over time with a layer-specific step,
// masks padded steps, applies dropout between layers and lays out output and final states.
// Not installed: only the recurrent layers' .cpp files include it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../../../autograd/recurrent.hpp"
#include "../../../autograd/tensor.hpp"
#include "../module.hpp"
#include "../recurrent_layer.hpp"

namespace tapegrad::nn::detail {

struct RecurrentSpec {
    std::string layer;  // "RNN", "LSTM", "GRU": the prefix of every error message
    std::size_t input_size = 0, hidden_size = 0, num_layers = 1, num_directions = 1;
    bool batch_first = false;
    double dropout = 0.0;
    bool training = false;
    DType dtype = f32;
    // Names of the initial states (h0, then c0 for LSTM); each is [num_layers*D, B, H] or undefined (zeros).
    std::vector<std::string> state_names{"h0"};
};

// Per layer*D + direction: the input projection of every step at once, [T, B, in] -> [T, B, G].
using ProjectFn = std::function<Tensor(std::size_t ld, const Tensor& layer_in)>;
// One step: xw_t [B, G] (row t of the projection) and the states [B, H] each -> the new states.
// The first state is the step's output (h).
using StepFn = std::function<std::vector<Tensor>(std::size_t ld, const Tensor& xw_t, const std::vector<Tensor>& state)>;

// A whole layer and direction at once (a fused op: rnn_sequence, lstm_sequence, gru_sequence):
// layer_in [T, B, in], the initial states [B, H] each (undefined for zeros) and the lengths (empty, or
// one per row) -> every output [T, B, H] and the final states. Used whenever the layer gives one,
// except in anomaly mode, whose messages name the step an op ran in.
using SequenceFn = std::function<SequenceResult(std::size_t ld, const Tensor& layer_in,
                                                const std::vector<Tensor>& init, bool reverse,
                                                const std::vector<std::int64_t>& lengths)>;

// Both directions of a bidirectional layer at once (rnn_sequence_bidirectional and its kin): layer
// l's input, each direction's initial states (rows 2l and 2l+1 of the weights) and the lengths ->
// output [T, B, 2H] and final states [2, B, H] each. Used in place of SequenceFn when given.
using BothFn = std::function<SequenceResult(std::size_t layer, const Tensor& layer_in,
                                            const std::vector<Tensor>& init_forward,
                                            const std::vector<Tensor>& init_reverse,
                                            const std::vector<std::int64_t>& lengths)>;

// One direction of a bidirectional layer for the _bidirectional ops: its weights, and its initial
// states as BothFn receives them (h0, then c0 for an LSTM; undefined for zeros).
DirectionWeights direction_weights(const RecurrentWeights& w, const std::vector<Tensor>& init);

struct RecurrentOutput {
    Tensor output;               // [T, B, D*H] (or [B, T, D*H] with batch_first)
    std::vector<Tensor> finals;  // per state: [num_layers*D, B, H], row layer*D + direction
};

// With lengths (one per batch row, in [1, T]), a padded step keeps every state and emits zeros, so
// each sequence ends (and the reverse direction starts) at its own last step.
RecurrentOutput run_recurrent(const RecurrentSpec& spec, const Tensor& input, const std::vector<Tensor>& init,
                              const std::vector<std::int64_t>& lengths, const ProjectFn& project,
                              const StepFn& step, const SequenceFn& sequence = nullptr,
                              const BothFn& both = nullptr);

// U(-1/sqrt(hidden), 1/sqrt(hidden)), PyTorch's initialisation of every recurrent parameter.
Tensor init_recurrent(std::size_t hidden, const Shape& shape);

// The options every recurrent layer shares, as its constructor received them.
struct RecurrentShape {
    std::size_t input_size = 0, hidden_size = 0, num_layers = 1;
    bool bias = true, batch_first = false;
    double dropout = 0.0;
    bool bidirectional = false;
};

// The shared part of RNNOptions, LSTMOptions or GRUOptions.
template <class Options>
RecurrentShape shape_of(const Options& o) {
    return {o.input_size, o.hidden_size, o.num_layers, o.bias, o.batch_first, o.dropout, o.bidirectional};
}

// The same as nn::RecurrentLayer keeps them (nonlinearity is the RNN's alone).
template <class Options>
RecurrentOptions recurrent_options_of(const Options& o, Nonlinearity nonlinearity = Nonlinearity::tanh) {
    return {o.input_size, o.hidden_size, o.num_layers, nonlinearity, o.bias, o.batch_first, o.dropout, o.bidirectional};
}

// Validates the shared options (naming the layer) and creates the weights of every layer and
// direction with PyTorch's names (weight_ih_l{k}[_reverse], ...), shapes ([gates*H, in]) and init,
// registering each through reg. Returns them indexed layer * D + direction.
using RegisterFn = std::function<Tensor(const std::string& name, Tensor value)>;
std::vector<RecurrentWeights> make_recurrent_weights(const std::string& layer, const RecurrentShape& shape,
                                                     std::size_t gates, const RegisterFn& reg);

// The same for a single cell ("RNNCell", "LSTMCell", "GRUCell"): weight_ih [gates*H, in],
// weight_hh [gates*H, H] and, with bias, bias_ih and bias_hh, registered in that order.
RecurrentWeights make_cell_weights(const std::string& cell, std::size_t input_size, std::size_t hidden_size,
                                   bool bias, std::size_t gates, const RegisterFn& reg);

// "10, 20, num_layers=2, <extra>, bias=false, batch_first=true, dropout=0.5, bidirectional=true",
// listing only what differs from the defaults, as PyTorch prints its layers.
std::string recurrent_repr(const RecurrentShape& shape, const std::string& extra = "");

}  // namespace tapegrad::nn::detail
