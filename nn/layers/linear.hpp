/// \file
/// \brief Linear (the per-step output layer) and Embedding (token ids to vectors).
/// \ingroup modules
///
/// Linear (the per-step output layer) and Embedding (token ids to vectors).
#pragma once

#include <cstdint>
#include <optional>

#include "module.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// y = x W^T + b over the last axis of any-rank input: [..., in] -> [..., out], so one Linear is
/// the output layer of every time step of a [T, B, H] sequence. PyTorch's names, shapes and init:
/// weight [out, in] and bias [out], both U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
public:
    /// Sizes of 0 are a ValueError.
    Linear(std::size_t in_features, std::size_t out_features, bool bias = true);
    /// x [..., in] -> [..., out]. A last axis of another size is a ShapeError, x of another dtype
    /// than the parameters a DTypeError.
    Tensor forward(const Tensor& x) const;
    Tensor operator()(const Tensor& x) const { return forward(x); }  ///< forward(x)

    std::string type_name() const override { return "Linear"; }  ///< "Linear"
    std::string extra_repr() const override;  ///< "in, out" (and bias=false), for summary()

    Tensor weight;  ///< [out, in]
    Tensor bias;    ///< [out], undefined when built without bias
    const std::size_t in_features;   ///< in
    const std::size_t out_features;  ///< out
};

/// A table of num_embeddings vectors of size embedding_dim, looked up by integer ids:
/// ids [...] -> [..., embedding_dim]. weight ~ N(0, 1) as in PyTorch. With padding_idx, that row
/// starts at zero, receives no gradient, and positions holding it give zero vectors.
class Embedding : public Module {
public:
    /// Sizes of 0, or a padding_idx outside [0, num_embeddings), are a ValueError.
    Embedding(std::size_t num_embeddings, std::size_t embedding_dim,
              std::optional<std::int64_t> padding_idx = std::nullopt);
    /// ids [...] -> [..., embedding_dim]; an id outside [0, num_embeddings) is a ValueError naming it.
    Tensor forward(const xt::xarray<std::int64_t>& ids) const;
    Tensor operator()(const xt::xarray<std::int64_t>& ids) const { return forward(ids); }  ///< forward(ids)

    std::string type_name() const override { return "Embedding"; }  ///< "Embedding"
    std::string extra_repr() const override;  ///< the sizes and padding_idx, for summary()

    Tensor weight;  ///< [num_embeddings, embedding_dim]
    const std::size_t num_embeddings;  ///< the rows of the table
    const std::size_t embedding_dim;   ///< the size of each vector
    const std::optional<std::int64_t> padding_idx;  ///< the id whose row stays zero, if any
};

/// @}
}  // namespace tapegrad::nn
