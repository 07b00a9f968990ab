/// \file
/// \brief Evaluation numbers for sequence models: bits per character, perplexity, accuracy.
/// \ingroup training
///
/// Evaluation numbers for sequence models, computed from values already in hand (a
/// mean loss, logits), never recorded on a tape: perplexity and bits per character for language
/// models, arg-max accuracy over the real (unmasked, not ignored) positions of a padded batch.
#pragma once

#include <cstdint>

#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

/// \addtogroup training
/// @{

/// exp(mean NLL in nats), e.g. of cross_entropy with the default mean reduction. NaN or a negative
/// NLL is a ValueError; +inf (a diverged model) gives +inf.
double perplexity(double mean_nll_nats);
/// mean NLL / ln 2: the average code length per character in bits. Same checks as perplexity.
double bits_per_char(double mean_nll_nats);

/// The fraction of counted positions where the arg-max of logits [..., C] equals targets [...] (the
/// logits' shape without the class axis). A position counts when its mask (optional, the targets'
/// shape, any dtype, nonzero = count) is nonzero and its target is not ignore_index. Arg-max ties
/// go to the lowest class. No position counted gives NaN (0/0, as there is nothing to measure).
/// Shape mismatches are a ShapeError; a counted target outside [0, C) is a ValueError.
double masked_accuracy(const Tensor& logits, const xt::xarray<std::int64_t>& targets, const Tensor& mask = Tensor(),
                       std::int64_t ignore_index = -100);

/// @}
}  // namespace tapegrad::nn
