/// \file
/// \brief The GRU: one step (GRUCell) and a multi-layer, optionally bidirectional layer (GRU).
/// \ingroup modules
///
/// The GRU, as one step (GRUCell) and as a multi-layer, optionally bidirectional layer
/// over a whole sequence (GRU). The cell is composed from tape ops; the layer runs each layer and
/// direction as one fused gru_sequence op (the composed cell in anomaly mode).
/// Parameter names, shapes, gate order (r, z, n), equations, layouts and initialisation are
/// PyTorch's, so weights move between the two by name.
#pragma once

#include <cstdint>
#include <vector>

#include "module.hpp"
#include "recurrent_layer.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
/// n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h.
/// b_hn stays inside the product with r, which is why GRU keeps two bias vectors.
class GRUCell : public Module {
public:
    /// Parameters initialised U(-1/sqrt(H), 1/sqrt(H)), as PyTorch; sizes of 0 are a ValueError.
    GRUCell(std::size_t input_size, std::size_t hidden_size, bool bias = true);
    /// x [B, input], h [B, hidden] (undefined means zeros) -> h' [B, hidden].
    Tensor forward(const Tensor& x, const Tensor& h = Tensor()) const;
    Tensor operator()(const Tensor& x, const Tensor& h = Tensor()) const { return forward(x, h); }  ///< forward(x, h)

    std::string type_name() const override { return "GRUCell"; }  ///< "GRUCell"
    std::string extra_repr() const override;  ///< the sizes and options, for summary()

    Tensor weight_ih;  ///< [3H, input]; rows r, z, n
    Tensor weight_hh;  ///< [3H, H]; rows r, z, n
    Tensor bias_ih;    ///< [3H]; undefined without bias
    Tensor bias_hh;    ///< [3H]; undefined without bias
    const std::size_t input_size;   ///< the features of x
    const std::size_t hidden_size;  ///< H, the features of h
};

/// Options of GRU (PyTorch's, with its defaults).
struct GRUOptions {
    std::size_t input_size = 0;   ///< the features of the input (required)
    std::size_t hidden_size = 0;  ///< H, the features of the state (required)
    std::size_t num_layers = 1;   ///< stacked layers, each reading the one below
    bool bias = true;  ///< with bias_ih and bias_hh
    bool batch_first = false;  ///< input and output [B, T, F] instead of [T, B, F]
    double dropout = 0.0;      ///< on the outputs of every layer but the last, in training mode
    bool bidirectional = false;  ///< a second, reverse direction per layer (D = 2)
};

/// What GRU::forward returns.
struct GRUResult {
    Tensor output;  ///< [T, B, D*H] (or [B, T, D*H] with batch_first); forward direction's half first
    Tensor h_n;     ///< [num_layers*D, B, H], row layer*D + direction
};

/// The whole sequence: input [T, B, input_size], h0 [num_layers*D, B, H] (undefined: zeros). Lengths
/// as nn::RNN: padded steps keep the state and emit zeros, h_n is each sequence's state at its own
/// last step, and the reverse direction starts there.
/// Also an nn::RecurrentLayer: forward(input, RecurrentState{h0}, lengths) returns {output, {h_n}}.
class GRU : public RecurrentLayer {
public:
    /// Creates the parameters of every layer and direction (weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
    /// bias_hh_l{k}, with suffix _reverse), U(-1/sqrt(H), 1/sqrt(H)). Sizes or num_layers of 0, or a
    /// dropout outside [0, 1], are a ValueError.
    explicit GRU(const GRUOptions& options);
    /// Runs the sequence. A wrong number of axes or features, an empty sequence or batch, a state
    /// of the wrong shape or lengths of the wrong count are a ShapeError; a length outside [1, T] is
    /// a ValueError; inputs of another dtype than the parameters are a DTypeError.
    GRUResult forward(const Tensor& input, const Tensor& h0 = Tensor(),
                      const std::vector<std::int64_t>& lengths = {}) const;
    /// forward(...)
    GRUResult operator()(const Tensor& input, const Tensor& h0 = Tensor(),
                         const std::vector<std::int64_t>& lengths = {}) const {
        return forward(input, h0, lengths);
    }

    using RecurrentLayer::forward;
    using RecurrentLayer::operator();

    std::string type_name() const override { return "GRU"; }  ///< "GRU"
    std::string extra_repr() const override;  ///< the sizes and options, for summary()

    const GRUOptions options;  ///< as given

protected:
    RecurrentResult forward_state(const Tensor& input, const RecurrentState& state,
                                  const std::vector<std::int64_t>& lengths) const override;

private:
    std::vector<RecurrentWeights> weights_;  ///< index layer * D + direction
};

/// @}
}  // namespace tapegrad::nn
