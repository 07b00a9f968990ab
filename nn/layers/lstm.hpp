// tapegrad::nn: the LSTM, as one step (LSTMCell) and as a multi-layer, optionally bidirectional layer
// over a whole sequence (LSTM). The cell is composed from tape ops; the layer runs each layer and
// direction as one fused lstm_sequence op (the composed cell in anomaly mode).
// Parameter names, shapes, gate order (i, f, g, o), equations, layouts and initialisation are
// PyTorch's, so weights move between the two by name.
#pragma once

#include <cstdint>
#include <vector>

#include "module.hpp"
#include "recurrent_layer.hpp"

namespace tapegrad::nn {

// The state of an LSTM step: h [B, H] (the output) and the cell c [B, H].
struct LSTMState {
    Tensor h, c;
};

// gates = x W_ih^T + b_ih + h W_hh^T + b_hh, split into i, f, g, o:
// c' = sigmoid(f) * c + sigmoid(i) * tanh(g),  h' = sigmoid(o) * tanh(c').
class LSTMCell : public Module {
public:
    LSTMCell(std::size_t input_size, std::size_t hidden_size, bool bias = true);
    // x [B, input]; h and c [B, hidden], undefined meaning zeros. Returns (h', c').
    LSTMState forward(const Tensor& x, const Tensor& h = Tensor(), const Tensor& c = Tensor()) const;
    LSTMState operator()(const Tensor& x, const Tensor& h = Tensor(), const Tensor& c = Tensor()) const {
        return forward(x, h, c);
    }

    std::string type_name() const override { return "LSTMCell"; }
    std::string extra_repr() const override;

    Tensor weight_ih, weight_hh;  // [4H, input], [4H, H]; rows i, f, g, o
    Tensor bias_ih, bias_hh;      // [4H] each; undefined without bias
    const std::size_t input_size, hidden_size;
};

struct LSTMOptions {
    std::size_t input_size = 0;
    std::size_t hidden_size = 0;
    std::size_t num_layers = 1;
    bool bias = true;
    bool batch_first = false;  // input and output [B, T, F] instead of [T, B, F]
    double dropout = 0.0;      // on the outputs of every layer but the last, in training mode
    bool bidirectional = false;
};

struct LSTMResult {
    Tensor output;  // [T, B, D*H] (or [B, T, D*H] with batch_first); forward direction's half first
    Tensor h_n;     // [num_layers*D, B, H], row layer*D + direction
    Tensor c_n;     // [num_layers*D, B, H], likewise
};

// The whole sequence: input [T, B, input_size], h0 and c0 [num_layers*D, B, H] (undefined: zeros).
// With lengths (one per batch row, 1..T), padded steps keep h and c and emit zeros, h_n and c_n
// hold each sequence's state at its own last step, and the reverse direction starts there: a padded
// batch gives the same outputs and gradients as running each sequence alone (as PyTorch's packed
// sequences do).
// Also an nn::RecurrentLayer: forward(input, RecurrentState{h0, c0}, lengths) returns
// {output, {h_n, c_n}}.
class LSTM : public RecurrentLayer {
public:
    explicit LSTM(const LSTMOptions& options);
    LSTMResult forward(const Tensor& input, const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor(),
                       const std::vector<std::int64_t>& lengths = {}) const;
    LSTMResult operator()(const Tensor& input, const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor(),
                          const std::vector<std::int64_t>& lengths = {}) const {
        return forward(input, h0, c0, lengths);
    }

    using RecurrentLayer::forward;
    using RecurrentLayer::operator();

    std::string type_name() const override { return "LSTM"; }
    std::string extra_repr() const override;

    const LSTMOptions options;

protected:
    RecurrentResult forward_state(const Tensor& input, const RecurrentState& state,
                                  const std::vector<std::int64_t>& lengths) const override;

private:
    std::vector<RecurrentWeights> weights_;  // index layer * D + direction
};

}  // namespace tapegrad::nn
