/// \file
/// \brief The interface nn::RNN, nn::LSTM and nn::GRU share.
/// \ingroup modules
///
/// The interface nn::RNN, nn::LSTM and nn::GRU share, so that a model can pick its
/// recurrent layer at run time and carry its state without knowing which layer it holds. One state
/// type covers h and (h, c); forward(input, state, lengths) returns {output, state}; pack_state and
/// unpack_state turn a state into the one Tensor nn::tbptt and nn::sample carry, and back.
/// make_recurrent builds a layer from a kind ("rnn", "lstm", "gru") and one options struct.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "module.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// The activation of the Elman RNN.
enum class Nonlinearity {
    tanh,  ///< tanh (PyTorch's default)
    relu   ///< max(x, 0)
};

/// A recurrent layer's state between calls: h [num_layers*D, B, H], row layer*D + direction, and
/// for an LSTM the cell state c of the same shape. An undefined tensor means zeros, so
/// RecurrentState{} is the zero state of every layer.
/// (The {} let callers write {h} without -Wextra's missing-initializer warning.)
struct RecurrentState {
    Tensor h{};  ///< [num_layers*D, B, H]; undefined means zeros
    Tensor c{};  ///< LSTM only; undefined for RNN and GRU
    bool defined() const { return h.defined() || c.defined(); }  ///< whether h or c is defined
    /// The same values cut from their history (truncated BPTT); undefined parts stay undefined.
    RecurrentState detach() const;
};

/// What RecurrentLayer::forward returns.
struct RecurrentResult {
    Tensor output{};         ///< [T, B, D*H] (or [B, T, D*H] with batch_first); forward direction's half first
    RecurrentState state{};  ///< the final state: h_n, and c_n for an LSTM
};

/// Which recurrent layer.
enum class RecurrentKind {
    rnn,   ///< nn::RNN, the Elman RNN
    lstm,  ///< nn::LSTM
    gru    ///< nn::GRU
};
const char* recurrent_kind_name(RecurrentKind kind);  ///< "rnn", "lstm", "gru"
/// "rnn", "lstm" or "gru", in any letter case (PyTorch's class names "RNN", "LSTM", "GRU" too);
/// anything else is a ValueError listing the three.
RecurrentKind parse_recurrent_kind(const std::string& name);

/// The options of every recurrent layer: RNNOptions' fields. nonlinearity is the Elman RNN's alone;
/// relu for an LSTM or a GRU is a ValueError in make_recurrent.
struct RecurrentOptions {
    std::size_t input_size = 0;   ///< the features of the input (required)
    std::size_t hidden_size = 0;  ///< H, the features of the state (required)
    std::size_t num_layers = 1;   ///< stacked layers, each reading the one below
    Nonlinearity nonlinearity = Nonlinearity::tanh;  ///< the Elman RNN's activation
    bool bias = true;  ///< with bias_ih and bias_hh
    bool batch_first = false;  ///< input and output [B, T, F] instead of [T, B, F]
    double dropout = 0.0;      ///< on the outputs of every layer but the last, in training mode
    bool bidirectional = false;  ///< a second, reverse direction per layer (D = 2)
};

/// The base of RNN, LSTM and GRU. Each keeps its own typed forward (RNNResult, LSTMResult,
/// GRUResult) and adds this one, which checks the state against the layer and then runs the typed
/// forward: both give the same values and gradients. From tests/test_libtorch_guide.cpp:
///
/// \snippet test_libtorch_guide.cpp recurrent_interface
class RecurrentLayer : public Module {
public:
    RecurrentKind kind() const { return kind_; }  ///< rnn, lstm or gru
    /// The options the layer was built with, in the shared form.
    const RecurrentOptions& recurrent_options() const { return options_; }
    std::size_t num_directions() const { return options_.bidirectional ? 2 : 1; }  ///< D: 2 when bidirectional
    bool has_cell_state() const { return kind_ == RecurrentKind::lstm; }  ///< true for an LSTM

    /// input [T, B, input_size] ([B, T, input_size] with batch_first). state.h (and, for an LSTM,
    /// state.c) [num_layers*D, B, H], undefined meaning zeros. lengths as in the typed forward.
    /// A state with c is a ValueError for RNN and GRU; an LSTM takes h and c together or neither.
    /// The state has no default: on a concrete layer, forward(x) and forward(x, Tensor()) are the
    /// typed forward, and `{}` as the state would name both, so write nn::RecurrentState{} there.
    RecurrentResult forward(const Tensor& input, const RecurrentState& state,
                            const std::vector<std::int64_t>& lengths = {}) const;
    /// forward(input, state, lengths)
    RecurrentResult operator()(const Tensor& input, const RecurrentState& state,
                               const std::vector<std::int64_t>& lengths = {}) const {
        return forward(input, state, lengths);
    }

    /// Zeros [num_layers*D, batch, H] in the parameters' dtype: h, and c for an LSTM.
    RecurrentState zero_state(std::size_t batch) const;
    /// The state as one Tensor, for code that carries an opaque Tensor (nn::tbptt, nn::sample): h for
    /// RNN and GRU; h and c stacked along axis 0, [2*num_layers*D, B, H], for an LSTM; undefined for
    /// an undefined state. Differentiable (concat and split on the tape), so gradients reach a learnt
    /// initial state through it.
    Tensor pack_state(const RecurrentState& state) const;
    /// The inverse; an undefined tensor gives RecurrentState{}. A tensor of another shape (an RNN's
    /// state given to an LSTM, say) is a ShapeError naming the layer and both shapes.
    RecurrentState unpack_state(const Tensor& packed) const;

protected:
    /// For the derived layers: their kind and options in the shared form.
    RecurrentLayer(RecurrentKind kind, const RecurrentOptions& options) : kind_(kind), options_(options) {}
    /// The typed forward, given a state forward() has checked.
    virtual RecurrentResult forward_state(const Tensor& input, const RecurrentState& state,
                                          const std::vector<std::int64_t>& lengths) const = 0;

private:
    RecurrentKind kind_;
    RecurrentOptions options_;
};

/// A layer of the given kind: nn::RNN, nn::LSTM or nn::GRU, with the options' fields copied into its
/// own options struct (so its parameters, their names and their initial values are the same as the
/// concrete layer's built directly). relu for an LSTM or a GRU is a ValueError.
std::unique_ptr<RecurrentLayer> make_recurrent(RecurrentKind kind, const RecurrentOptions& options);
/// The same with the kind by name, as parse_recurrent_kind reads it.
std::unique_ptr<RecurrentLayer> make_recurrent(const std::string& kind, const RecurrentOptions& options);

/// @}
}  // namespace tapegrad::nn
