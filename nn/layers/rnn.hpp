/// \file
/// \brief The Elman RNN: one step (RNNCell) and a multi-layer, optionally bidirectional layer (RNN).
/// \ingroup modules
///
/// The Elman RNN, as one step (RNNCell) and as a multi-layer, optionally
/// bidirectional layer over a whole sequence (RNN). The cell is composed from tape ops; the layer runs
/// each layer and direction as one fused rnn_sequence op (the composed cell in anomaly mode). Their
/// gradients, backpropagation through time included, come from the tape.
/// Names, shapes, layouts and initialisation are PyTorch's, so weights move between the two.
#pragma once

#include <cstdint>
#include <vector>

#include "module.hpp"
#include "recurrent_layer.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh):  x [B, input], h [B, hidden] -> [B, hidden].
class RNNCell : public Module {
public:
    /// Parameters initialised U(-1/sqrt(H), 1/sqrt(H)), as PyTorch; sizes of 0 are a ValueError.
    RNNCell(std::size_t input_size, std::size_t hidden_size, Nonlinearity nonlinearity = Nonlinearity::tanh,
            bool bias = true);
    /// h undefined means zeros.
    Tensor forward(const Tensor& x, const Tensor& h = Tensor()) const;
    Tensor operator()(const Tensor& x, const Tensor& h = Tensor()) const { return forward(x, h); }  ///< forward(x, h)

    std::string type_name() const override { return "RNNCell"; }  ///< "RNNCell"
    std::string extra_repr() const override;  ///< the sizes and options, for summary()

    Tensor weight_ih;  ///< [H, input]
    Tensor weight_hh;  ///< [H, H]
    Tensor bias_ih;    ///< [H]; undefined without bias
    Tensor bias_hh;    ///< [H]; undefined without bias
    const std::size_t input_size;   ///< the features of x
    const std::size_t hidden_size;  ///< H, the features of h
    const Nonlinearity nonlinearity;  ///< tanh or relu
};

/// Options of RNN (PyTorch's, with its defaults).
struct RNNOptions {
    std::size_t input_size = 0;   ///< the features of the input (required)
    std::size_t hidden_size = 0;  ///< H, the features of the state (required)
    std::size_t num_layers = 1;   ///< stacked layers, each reading the one below
    Nonlinearity nonlinearity = Nonlinearity::tanh;  ///< tanh or relu
    bool bias = true;  ///< with bias_ih and bias_hh
    bool batch_first = false;  ///< input and output [B, T, F] instead of [T, B, F]
    double dropout = 0.0;      ///< on the outputs of every layer but the last, in training mode
    bool bidirectional = false;  ///< a second, reverse direction per layer (D = 2)
};

/// What RNN::forward returns.
struct RNNResult {
    Tensor output;  ///< [T, B, D*H] (or [B, T, D*H] with batch_first); forward direction's half first
    Tensor h_n;     ///< [num_layers*D, B, H], row layer*D + direction
};

/// The whole sequence: input [T, B, input_size]. With lengths (one per batch row, 1..T), padded steps
/// neither change the state nor emit output (zeros), h_n holds each sequence's state at its own last
/// step, and the reverse direction starts at each sequence's own last step: a padded batch gives the
/// same outputs and gradients as running each sequence alone.
/// Also an nn::RecurrentLayer: forward(input, RecurrentState{h0}, lengths) returns {output, {h_n}}.
///
/// The three recurrent layers, their options and results (from tests/test_libtorch_guide.cpp):
/// \snippet test_libtorch_guide.cpp recurrent_layers
///
/// Lengths instead of packed sequences:
/// \snippet test_libtorch_guide.cpp lengths
class RNN : public RecurrentLayer {
public:
    /// Creates the parameters of every layer and direction (weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
    /// bias_hh_l{k}, with suffix _reverse), U(-1/sqrt(H), 1/sqrt(H)). Sizes or num_layers of 0, or a
    /// dropout outside [0, 1], are a ValueError.
    explicit RNN(const RNNOptions& options);
    /// Runs the sequence. A wrong number of axes or features, an empty sequence or batch, a state
    /// of the wrong shape or lengths of the wrong count are a ShapeError; a length outside [1, T] is
    /// a ValueError; inputs of another dtype than the parameters are a DTypeError.
    RNNResult forward(const Tensor& input, const Tensor& h0 = Tensor(),
                      const std::vector<std::int64_t>& lengths = {}) const;
    /// forward(...)
    RNNResult operator()(const Tensor& input, const Tensor& h0 = Tensor(),
                         const std::vector<std::int64_t>& lengths = {}) const {
        return forward(input, h0, lengths);
    }
    using RecurrentLayer::forward;
    using RecurrentLayer::operator();

    std::string type_name() const override { return "RNN"; }  ///< "RNN"
    std::string extra_repr() const override;  ///< the sizes and options, for summary()

    const RNNOptions options;  ///< as given

protected:
    RecurrentResult forward_state(const Tensor& input, const RecurrentState& state,
                                  const std::vector<std::int64_t>& lengths) const override;

private:
    std::vector<RecurrentWeights> weights_;  ///< index layer * D + direction
};

/// @}
}  // namespace tapegrad::nn
