// tapegrad::nn: the Elman RNN, as one step (RNNCell) and as a multi-layer, optionally
// bidirectional layer over a whole sequence (RNN). The cell is composed from tape ops; the layer runs
// each layer and direction as one fused rnn_sequence op (the composed cell in anomaly mode). Their
// gradients, backpropagation through time included, come from the tape.
// Names, shapes, layouts and initialisation are PyTorch's, so weights move between the two.
#pragma once

#include <cstdint>
#include <vector>

#include "module.hpp"
#include "recurrent_layer.hpp"

namespace tapegrad::nn {

// h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh):  x [B, input], h [B, hidden] -> [B, hidden].
class RNNCell : public Module {
public:
    RNNCell(std::size_t input_size, std::size_t hidden_size, Nonlinearity nonlinearity = Nonlinearity::tanh,
            bool bias = true);
    // h undefined means zeros.
    Tensor forward(const Tensor& x, const Tensor& h = Tensor()) const;
    Tensor operator()(const Tensor& x, const Tensor& h = Tensor()) const { return forward(x, h); }

    std::string type_name() const override { return "RNNCell"; }
    std::string extra_repr() const override;

    Tensor weight_ih, weight_hh;  // [H, input], [H, H]
    Tensor bias_ih, bias_hh;      // [H] each; undefined without bias
    const std::size_t input_size, hidden_size;
    const Nonlinearity nonlinearity;
};

struct RNNOptions {
    std::size_t input_size = 0;
    std::size_t hidden_size = 0;
    std::size_t num_layers = 1;
    Nonlinearity nonlinearity = Nonlinearity::tanh;
    bool bias = true;
    bool batch_first = false;  // input and output [B, T, F] instead of [T, B, F]
    double dropout = 0.0;      // on the outputs of every layer but the last, in training mode
    bool bidirectional = false;
};

struct RNNResult {
    Tensor output;  // [T, B, D*H] (or [B, T, D*H] with batch_first); forward direction's half first
    Tensor h_n;     // [num_layers*D, B, H], row layer*D + direction
};

// The whole sequence: input [T, B, input_size]. With lengths (one per batch row, 1..T), padded steps
// neither change the state nor emit output (zeros), h_n holds each sequence's state at its own last
// step, and the reverse direction starts at each sequence's own last step: a padded batch gives the
// same outputs and gradients as running each sequence alone.
// Also an nn::RecurrentLayer: forward(input, RecurrentState{h0}, lengths) returns {output, {h_n}}.
class RNN : public RecurrentLayer {
public:
    explicit RNN(const RNNOptions& options);
    RNNResult forward(const Tensor& input, const Tensor& h0 = Tensor(),
                      const std::vector<std::int64_t>& lengths = {}) const;
    RNNResult operator()(const Tensor& input, const Tensor& h0 = Tensor(),
                         const std::vector<std::int64_t>& lengths = {}) const {
        return forward(input, h0, lengths);
    }
    using RecurrentLayer::forward;
    using RecurrentLayer::operator();

    std::string type_name() const override { return "RNN"; }
    std::string extra_repr() const override;

    const RNNOptions options;

protected:
    RecurrentResult forward_state(const Tensor& input, const RecurrentState& state,
                                  const std::vector<std::int64_t>& lengths) const override;

private:
    std::vector<RecurrentWeights> weights_;  // index layer * D + direction
};

}  // namespace tapegrad::nn
