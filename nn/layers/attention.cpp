// tapegrad::nn: Attention. Composed from recorded ops (matmul, where, masked_fill, softmax), so its
// gradient is the tape's; the only work of its own is keeping padded steps out of every number.
#include "attention.hpp"

#include <cmath>

#include <fmt/format.h>

#include "../../autograd/index.hpp"
#include "../../autograd/ops.hpp"

namespace tapegrad::nn {

namespace {
std::string shape_or_undefined(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; }
}  // namespace

const char* attention_score_name(AttentionScore s) {
    switch (s) {
        case AttentionScore::additive: return "additive";
        case AttentionScore::dot: return "dot";
        case AttentionScore::general: return "general";
    }
    return "?";
}

Attention::Attention(const AttentionOptions& o) : options(o) {
    if (o.query_size == 0 || o.key_size == 0)
        throw ValueError(
            fmt::format("Attention: query_size {} and key_size {} must be positive", o.query_size, o.key_size));
    switch (o.score) {
        case AttentionScore::additive: {
            const std::size_t A = o.attention_size == 0 ? o.key_size : o.attention_size;
            query_proj = register_module("query_proj", Linear(o.query_size, A, false));
            key_proj = register_module("key_proj", Linear(o.key_size, A, true));
            v = register_module("v", Linear(A, 1, false));
            break;
        }
        case AttentionScore::dot:
            if (o.query_size != o.key_size)
                throw ValueError(fmt::format("Attention(dot): query_size {} must equal key_size {} (use general or "
                                             "additive scores for different sizes)",
                                             o.query_size, o.key_size));
            break;
        case AttentionScore::general: {
            const double k = 1.0 / std::sqrt(static_cast<double>(o.query_size));
            weight = register_parameter("weight", uniform({o.key_size, o.query_size}, -k, k));
            break;
        }
    }
    if (o.score != AttentionScore::additive && o.attention_size != 0)
        throw ValueError(fmt::format("Attention({}): attention_size is for additive scores only (got {})",
                                     attention_score_name(o.score), o.attention_size));
}

AttentionOutput Attention::forward(const Tensor& query, const Tensor& keys,
                                   const std::vector<std::int64_t>& lengths) const {
    const std::string who = fmt::format("Attention({})", attention_score_name(options.score));
    const std::size_t Hq = options.query_size, Hk = options.key_size;
    const char* layout = options.batch_first ? "[batch, source, key_size]" : "[source, batch, key_size]";
    if (!query.defined() || query.dim() != 2 || query.size(1) != Hq)
        throw ShapeError(fmt::format("{}: query must be [batch, {}], got {}", who, Hq, shape_or_undefined(query)));
    if (!keys.defined() || keys.dim() != 3 || keys.size(2) != Hk)
        throw ShapeError(fmt::format("{}: keys must be {} with key_size {}, got {}", who, layout, Hk,
                                     shape_or_undefined(keys)));
    const std::size_t B = query.size(0);
    const std::size_t S = options.batch_first ? keys.size(1) : keys.size(0);
    const std::size_t KB = options.batch_first ? keys.size(0) : keys.size(1);
    if (KB != B)
        throw ShapeError(fmt::format("{}: query {} has batch {} but keys {} ({}) have batch {}", who,
                                     shape_str(query.shape()), B, shape_str(keys.shape()), layout, KB));
    if (S == 0) throw ShapeError(fmt::format("{}: keys {} hold no source steps", who, shape_str(keys.shape())));
    const DType dt = dtype();
    if (query.dtype() != keys.dtype() || (!parameters().empty() && query.dtype() != dt))
        throw DTypeError(fmt::format("{}: query is {} and keys are {}{}; convert with .to()", who,
                                     dtype_name(query.dtype()), dtype_name(keys.dtype()),
                                     parameters().empty() ? "" : fmt::format(", parameters {}", dtype_name(dt))));
    if (!lengths.empty() && lengths.size() != B)
        throw ShapeError(fmt::format("{}: {} lengths given for a batch of {}", who, lengths.size(), B));
    bool padded = false;
    for (std::size_t b = 0; b < lengths.size(); ++b) {
        if (lengths[b] < 1 || lengths[b] > static_cast<std::int64_t>(S))
            throw ValueError(fmt::format("{}: lengths[{}] = {} is out of range [1, {}]", who, b, lengths[b], S));
        padded = padded || lengths[b] < static_cast<std::int64_t>(S);
    }

    Tensor mem = options.batch_first ? keys : permute(keys, {1, 0, 2});  // [B, S, Hk]
    xt::xarray<bool> pad = xt::xarray<bool>::from_shape({B, S});        // true on padded steps
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t s = 0; s < S; ++s) pad(b, s) = padded && static_cast<std::int64_t>(s) >= lengths[b];
    const BoolTensor pad_steps(pad);
    // Zeros in place of padded steps before any product reads them: a NaN there times a zero weight
    // (or times a zero gradient in backward) would still be NaN. where() sends the keys no gradient
    // at those steps.
    if (padded) mem = where(pad_steps.reshape({static_cast<long>(B), static_cast<long>(S), 1}), 0.0, mem);

    Tensor scores;  // [B, S]
    switch (options.score) {
        case AttentionScore::additive: {
            Tensor q = unsqueeze((*query_proj)(query), 1);   // [B, 1, A]
            Tensor e = tanh((*key_proj)(mem) + q);           // [B, S, A]
            scores = squeeze((*v)(e), -1);
            break;
        }
        case AttentionScore::dot:
        case AttentionScore::general: {
            Tensor q = options.score == AttentionScore::dot ? query : linear(query, weight);  // [B, Hk]
            scores = squeeze(matmul(mem, unsqueeze(q, -1)), -1);                             // [B, S, 1] -> [B, S]
            break;
        }
    }
    // -inf rather than a large negative number: exp gives exactly 0, so padded weights are exactly 0
    // in any dtype; every row has at least one valid step, so no row is all -inf.
    if (padded) scores = masked_fill(scores, pad_steps, -INFINITY);
    Tensor weights = softmax(scores, 1);
    Tensor context = squeeze(matmul(unsqueeze(weights, 1), mem), 1);  // [B, 1, S] @ [B, S, Hk] -> [B, Hk]
    return {context, weights};
}

std::string Attention::extra_repr() const {
    std::string s = fmt::format("{}, query_size={}, key_size={}", attention_score_name(options.score), options.query_size,
                                options.key_size);
    if (options.score == AttentionScore::additive)
        s +=
            fmt::format(", attention_size={}", options.attention_size == 0 ? options.key_size : options.attention_size);
    if (options.batch_first) s += ", batch_first=true";
    return s;
}

}  // namespace tapegrad::nn
