// tapegrad::nn: Linear (the per-step output layer) and Embedding (token ids to vectors).
#pragma once

#include <cstdint>
#include <optional>

#include "module.hpp"

namespace tapegrad::nn {

// y = x W^T + b over the last axis of any-rank input: [..., in] -> [..., out], so one Linear is
// the output layer of every time step of a [T, B, H] sequence. PyTorch's names, shapes and init:
// weight [out, in] and bias [out], both U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
public:
    Linear(std::size_t in_features, std::size_t out_features, bool bias = true);
    Tensor forward(const Tensor& x) const;
    Tensor operator()(const Tensor& x) const { return forward(x); }

    std::string type_name() const override { return "Linear"; }
    std::string extra_repr() const override;

    Tensor weight;  // [out, in]
    Tensor bias;    // [out], undefined when built without bias
    const std::size_t in_features, out_features;
};

// A table of num_embeddings vectors of size embedding_dim, looked up by integer ids:
// ids [...] -> [..., embedding_dim]. weight ~ N(0, 1) as in PyTorch. With padding_idx, that row
// starts at zero, receives no gradient, and positions holding it give zero vectors.
class Embedding : public Module {
public:
    Embedding(std::size_t num_embeddings, std::size_t embedding_dim,
              std::optional<std::int64_t> padding_idx = std::nullopt);
    Tensor forward(const xt::xarray<std::int64_t>& ids) const;
    Tensor operator()(const xt::xarray<std::int64_t>& ids) const { return forward(ids); }

    std::string type_name() const override { return "Embedding"; }
    std::string extra_repr() const override;

    Tensor weight;  // [num_embeddings, embedding_dim]
    const std::size_t num_embeddings, embedding_dim;
    const std::optional<std::int64_t> padding_idx;
};

}  // namespace tapegrad::nn
