/// \file
/// \brief The LSTM: one step (LSTMCell) and a multi-layer, optionally bidirectional layer (LSTM).
/// \ingroup modules
///
/// The LSTM, as one step (LSTMCell) and as a multi-layer, optionally bidirectional layer
/// over a whole sequence (LSTM). The cell is composed from tape ops; the layer runs each layer and
/// direction as one fused lstm_sequence op (the composed cell in anomaly mode).
/// Parameter names, shapes, gate order (i, f, g, o), equations, layouts and initialisation are
/// PyTorch's, so weights move between the two by name.
#pragma once

#include <cstdint>
#include <vector>

#include "module.hpp"
#include "recurrent_layer.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// The state of an LSTM step: h [B, H] (the output) and the cell c [B, H].
struct LSTMState {
    Tensor h;  ///< [B, H] the hidden state (the output)
    Tensor c;  ///< [B, H] the cell state
};

/// gates = x W_ih^T + b_ih + h W_hh^T + b_hh, split into i, f, g, o:
/// c' = sigmoid(f) * c + sigmoid(i) * tanh(g),  h' = sigmoid(o) * tanh(c').
class LSTMCell : public Module {
public:
    /// Parameters initialised U(-1/sqrt(H), 1/sqrt(H)), as PyTorch; sizes of 0 are a ValueError.
    LSTMCell(std::size_t input_size, std::size_t hidden_size, bool bias = true);
    /// x [B, input]; h and c [B, hidden], undefined meaning zeros. Returns (h', c').
    LSTMState forward(const Tensor& x, const Tensor& h = Tensor(), const Tensor& c = Tensor()) const;
    /// forward(...)
    LSTMState operator()(const Tensor& x, const Tensor& h = Tensor(), const Tensor& c = Tensor()) const {
        return forward(x, h, c);
    }

    std::string type_name() const override { return "LSTMCell"; }  ///< "LSTMCell"
    std::string extra_repr() const override;  ///< the sizes and options, for summary()

    Tensor weight_ih;  ///< [4H, input]; rows i, f, g, o
    Tensor weight_hh;  ///< [4H, H]; rows i, f, g, o
    Tensor bias_ih;    ///< [4H]; undefined without bias
    Tensor bias_hh;    ///< [4H]; undefined without bias
    const std::size_t input_size;   ///< the features of x
    const std::size_t hidden_size;  ///< H, the features of h
};

/// Options of LSTM (PyTorch's, with its defaults).
struct LSTMOptions {
    std::size_t input_size = 0;   ///< the features of the input (required)
    std::size_t hidden_size = 0;  ///< H, the features of the state (required)
    std::size_t num_layers = 1;   ///< stacked layers, each reading the one below
    bool bias = true;  ///< with bias_ih and bias_hh
    bool batch_first = false;  ///< input and output [B, T, F] instead of [T, B, F]
    double dropout = 0.0;      ///< on the outputs of every layer but the last, in training mode
    bool bidirectional = false;  ///< a second, reverse direction per layer (D = 2)
};

/// What LSTM::forward returns.
struct LSTMResult {
    Tensor output;  ///< [T, B, D*H] (or [B, T, D*H] with batch_first); forward direction's half first
    Tensor h_n;     ///< [num_layers*D, B, H], row layer*D + direction
    Tensor c_n;     ///< [num_layers*D, B, H], likewise
};

/// The whole sequence: input [T, B, input_size], h0 and c0 [num_layers*D, B, H] (undefined: zeros).
/// With lengths (one per batch row, 1..T), padded steps keep h and c and emit zeros, h_n and c_n
/// hold each sequence's state at its own last step, and the reverse direction starts there: a padded
/// batch gives the same outputs and gradients as running each sequence alone (as PyTorch's packed
/// sequences do).
/// Also an nn::RecurrentLayer: forward(input, RecurrentState{h0, c0}, lengths) returns
/// {output, {h_n, c_n}}. RNN's example shows the three layers.
class LSTM : public RecurrentLayer {
public:
    /// Creates the parameters of every layer and direction (weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
    /// bias_hh_l{k}, with suffix _reverse), U(-1/sqrt(H), 1/sqrt(H)). Sizes or num_layers of 0, or a
    /// dropout outside [0, 1], are a ValueError.
    explicit LSTM(const LSTMOptions& options);
    /// Runs the sequence. A wrong number of axes or features, an empty sequence or batch, a state
    /// of the wrong shape or lengths of the wrong count are a ShapeError; a length outside [1, T] is
    /// a ValueError; inputs of another dtype than the parameters are a DTypeError.
    LSTMResult forward(const Tensor& input, const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor(),
                       const std::vector<std::int64_t>& lengths = {}) const;
    /// forward(...)
    LSTMResult operator()(const Tensor& input, const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor(),
                          const std::vector<std::int64_t>& lengths = {}) const {
        return forward(input, h0, c0, lengths);
    }

    using RecurrentLayer::forward;
    using RecurrentLayer::operator();

    std::string type_name() const override { return "LSTM"; }  ///< "LSTM"
    std::string extra_repr() const override;  ///< the sizes and options, for summary()

    const LSTMOptions options;  ///< as given

protected:
    RecurrentResult forward_state(const Tensor& input, const RecurrentState& state,
                                  const std::vector<std::int64_t>& lengths) const override;

private:
    std::vector<RecurrentWeights> weights_;  ///< index layer * D + direction
};

/// @}
}  // namespace tapegrad::nn
