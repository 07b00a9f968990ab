/// \file
/// \brief Generating token sequences from a language model one step at a time.
/// \ingroup training
///
/// Generating token sequences from a language model one step at a time: greedy,
/// temperature and top-k sampling. Works with any model through a step function, so a user-written
/// cell samples as easily as the built-in layers; the same Generator seed gives the same text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "../../autograd/random.hpp"
#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

/// \addtogroup training
/// @{

/// Options of sample_logits() and sample().
struct SampleOptions {
    std::size_t length = 0;    ///< how many ids to generate
    double temperature = 1.0;  ///< > 0; below 1 sharpens the distribution, above 1 flattens it
    std::size_t top_k = 0;     ///< draw only among the k most likely ids; 0 = all
    bool greedy = false;       ///< always the arg-max (first on ties); temperature and top_k are ignored
};

/// One id drawn from logits [V] or [1, V]: softmax(logits / temperature) restricted to the top_k
/// largest logits (ties at the cut broken toward the lower id), computed in double after
/// subtracting the maximum, then one gen.uniform() inverted through the cumulative distribution.
/// Greedy draws nothing from gen. Errors: temperature <= 0 or not finite (unless greedy),
/// top_k > V, a NaN or infinite logit (named by its position), an empty or misshapen logits tensor.
std::int64_t sample_logits(const Tensor& logits, const SampleOptions& options, Generator& gen);

/// Feeds `token` to the model, updating `state` in place, and returns the logits [V] or [1, V] for
/// the next token. The state is opaque to the sampler: any Tensor (an LSTM can pack h and c).
using SampleStepFn = std::function<Tensor(std::int64_t token, Tensor& state)>;

/// Feeds the priming ids (at least one: a start id will do), then draws options.length ids, each
/// fed back in to get the next one's logits. Returns the generated ids only. Runs under NoGrad.
/// Afterwards `state` has consumed the priming ids and every generated id but the last (which was
/// never fed): to continue, call again with prime = {the last id}.
std::vector<std::int64_t> sample(const SampleStepFn& step, Tensor& state, const std::vector<std::int64_t>& prime,
                                 const SampleOptions& options, Generator& gen);

/// @}
}  // namespace tapegrad::nn
