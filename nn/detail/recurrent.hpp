// tapegrad::nn internal: the sequence driver shared by RNN, LSTM and GRU. It validates the input,
// initial states and lengths, runs every layer and direction over time with a layer-specific step,
// masks padded steps, applies dropout between layers and lays out output and final states.
// Not installed: only nn/*.cpp include it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../../autograd/tensor.hpp"

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

struct RecurrentOutput {
    Tensor output;               // [T, B, D*H] (or [B, T, D*H] with batch_first)
    std::vector<Tensor> finals;  // per state: [num_layers*D, B, H], row layer*D + direction
};

// With lengths (one per batch row, in [1, T]), a padded step keeps every state and emits zeros, so
// each sequence ends (and the reverse direction starts) at its own last step.
RecurrentOutput run_recurrent(const RecurrentSpec& spec, const Tensor& input, const std::vector<Tensor>& init,
                              const std::vector<std::int64_t>& lengths, const ProjectFn& project,
                              const StepFn& step);

// U(-1/sqrt(hidden), 1/sqrt(hidden)), PyTorch's initialisation of every recurrent parameter.
Tensor init_recurrent(std::size_t hidden, const Shape& shape);

}  // namespace tapegrad::nn::detail
