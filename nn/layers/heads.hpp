/// \file
/// \brief Output heads for many-to-one and one-to-many sequence models.
/// \ingroup modules
///
/// Output heads for the three shapes of sequence model. Many-to-many needs none
/// beyond a Linear applied to every step. Many-to-one reduces an RNN's [T, B, F] output to [B, F]:
/// the last valid step of each sequence, or a mean or max over its valid steps. One-to-many unrolls a
/// decoder from one input vector, feeding back its own predictions or teacher-forced inputs.
#pragma once

#include <cstdint>
#include <vector>

#include "linear.hpp"
#include "rnn.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// [T, B] mask of valid steps: 1 where t < lengths[b], else 0 (a constant). Use it as the weight of
/// cross_entropy over padded targets. Empty lengths mean every step of every sequence is valid.
Tensor sequence_mask(const std::vector<std::int64_t>& lengths, std::size_t T, std::size_t B, DType dtype = default_dtype());

/// output [T, B, F] -> [B, F], each row taken at step lengths[b] - 1 (T - 1 without lengths). For a
/// bidirectional RNN this is the forward direction's last state only; the reverse direction's final
/// state is at step 0 (both are in h_n).
Tensor last_step(const Tensor& output, const std::vector<std::int64_t>& lengths = {});
/// output [T, B, F] -> [B, F]: the mean over each sequence's valid steps.
Tensor masked_mean(const Tensor& output, const std::vector<std::int64_t>& lengths = {});
/// output [T, B, F] -> [B, F]: the max over each sequence's valid steps (gradient to the arg-max step).
Tensor masked_max(const Tensor& output, const std::vector<std::int64_t>& lengths = {});

/// Options of RNNDecoder.
struct DecoderOptions {
    std::size_t latent_size = 0;  ///< size of the one input vector the sequence is generated from
    std::size_t input_size = 0;   ///< size of each step's input; must equal output_size (predictions are fed back)
    std::size_t hidden_size = 0;  ///< H, the size of the cell's state
    std::size_t output_size = 0;  ///< the size of each step's output
    Nonlinearity nonlinearity = Nonlinearity::tanh;  ///< the cell's activation
    /// Without teacher inputs, step t+1's input is the one-hot of step t's arg-max (classification) or
    /// step t's output itself (regression). Step 0's input is zeros.
    enum class Feedback {
        one_hot_argmax,  ///< the one-hot of the arg-max of the previous output
        output           ///< the previous output itself
    } feedback = Feedback::one_hot_argmax;  ///< what is fed back without teacher inputs
};

/// One-to-many: h_0 = tanh(init(z)); h_t = cell(x_t, h_{t-1}); y_t = head(h_t).
class RNNDecoder : public Module {
public:
    /// Builds init, cell and head; input_size other than output_size, or a size of 0, is a ValueError.
    explicit RNNDecoder(const DecoderOptions& options);
    /// z [B, latent] -> outputs [steps, B, output_size]. teacher [steps, B, input_size], when given,
    /// is fed as the input of each step (teacher forcing) instead of the model's own predictions.
    Tensor forward(const Tensor& z, std::size_t steps, const Tensor& teacher = Tensor()) const;
    /// forward(z, steps, teacher)
    Tensor operator()(const Tensor& z, std::size_t steps, const Tensor& teacher = Tensor()) const {
        return forward(z, steps, teacher);
    }
    std::string type_name() const override { return "RNNDecoder"; }  ///< "RNNDecoder"
    std::string extra_repr() const override;  ///< the sizes, for summary()

    const DecoderOptions options;  ///< as given
    Linear init;   ///< latent -> the initial state ("init")
    RNNCell cell;  ///< the recurrence ("cell")
    Linear head;   ///< state -> output ("head")
};

/// @}
}  // namespace tapegrad::nn
