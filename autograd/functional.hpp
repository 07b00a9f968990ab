/// \file
/// \brief Softmax, losses, dropout and the other functions networks are built from.
/// \ingroup ops
///
/// The functions networks and losses are built from: softmax and log_softmax, the
/// classification losses (fused and numerically stable), mse and binary cross-entropy, dropout and
/// one-hot. Part of the op library (ops.hpp includes every family); implemented in functional.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "random.hpp"
#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup ops
/// @{

/// How a loss combines its per-element values.
enum class Reduction {
    mean,  ///< the (weighted) average: one scalar []
    sum,   ///< the total: one scalar []
    none,  ///< the per-element losses, shaped like the targets
};

// ---- softmax family -------------------------------------------------------------------------
/// Along `axis`, after subtracting the maximum there, so logits of +-1000 neither overflow nor
/// underflow to NaN. A slice holding +inf or only -inf gives NaN, as in PyTorch.
Tensor softmax(const Tensor& x, long axis = -1);
/// log(softmax(x)) along `axis`, computed as x - logsumexp(x) (stable); gradient
/// g - softmax(x) sum(g) along the axis.
Tensor log_softmax(const Tensor& x, long axis = -1);

// ---- classification losses ------------------------------------------------------------------
/// Options of cross_entropy() and nll_loss().
struct CrossEntropyOptions {
    /// Positions whose target equals this are skipped: they add 0 and do not count in the mean.
    std::int64_t ignore_index = -100;
    /// Optional per-position weight, shaped like the targets (either dtype; a constant that gets no
    /// gradient). A 0/1 mask excludes padding: a position of weight 0 adds exactly 0 and gets a
    /// gradient of exactly 0, whatever its logits.
    Tensor weight{};
    Reduction reduction = Reduction::mean;  ///< how the per-position losses are combined
};

/// logits [.., C], targets [..] (the logits' shape without the class axis), each in [0, C) or
/// ignore_index. loss_i = -w_i * log_softmax(logits_i)[target_i], fused and stable.
/// - sum: sum_i loss_i
/// - mean: sum_i loss_i / sum_i w_i over the positions not ignored (w_i = 1 without a weight, so the
///   plain mean over counted positions). When that sum is 0 (every position ignored or
///   weighted 0) the mean is NaN, as in PyTorch; the gradient is then 0 everywhere.
/// - none: the losses [..], 0 at ignored positions.
///
/// A target outside [0, C) that is not ignore_index is a ValueError naming it and its position.
Tensor cross_entropy(const Tensor& logits, const xt::xarray<std::int64_t>& targets, CrossEntropyOptions options = {});
/// The same on log-probabilities [.., C] (e.g. from log_softmax): loss_i = -w_i * log_probs_i[target_i].
Tensor nll_loss(const Tensor& log_probs, const xt::xarray<std::int64_t>& targets, CrossEntropyOptions options = {});

// ---- regression and binary losses -----------------------------------------------------------
/// (pred - target)^2, shapes equal (no broadcasting); both get gradients.
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::mean);
/// -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], computed as max(x, 0) - x t + log1p(exp(-|x|)),
/// which never overflows. targets: same shape and dtype as logits, values in [0, 1] (soft labels
/// allowed; others are a ValueError). Both get gradients (d/dt = -x).
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction = Reduction::mean);

// ---- dropout --------------------------------------------------------------------------------
/// Inverted dropout: each element is zeroed with probability p and the kept ones scaled by
/// 1 / (1 - p), so evaluation needs no rescaling. Returns x itself (the same Tensor) when !training
/// or p == 0; p == 1 gives zeros. p outside [0, 1] is a ValueError. The mask is drawn from `gen` in
/// row-major order, one uniform per element: the same seed gives the same mask.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);
Tensor dropout(const Tensor& x, double p, bool training);  ///< the thread's default_generator()

// ---- one-hot --------------------------------------------------------------------------------
/// ids [..] -> [.., num_classes]: 1 at each id, 0 elsewhere. A constant (no gradient). An id outside
/// [0, num_classes) is a ValueError naming it and its position.
Tensor one_hot(const xt::xarray<std::int64_t>& ids, std::size_t num_classes, DType dtype = default_dtype());

/// @}
}  // namespace tapegrad
