// tapegrad::nn: Linear and Embedding.
#include "linear.hpp"

#include <cmath>

#include <fmt/format.h>

#include "../../autograd/ops.hpp"
#include "../../autograd/random.hpp"

namespace tapegrad::nn {

Linear::Linear(std::size_t in, std::size_t out, bool has_bias) : in_features(in), out_features(out) {
    if (in == 0 || out == 0)
        throw ValueError(fmt::format("Linear: in_features {} and out_features {} must be positive", in, out));
    const double k = 1.0 / std::sqrt(static_cast<double>(in));
    weight = register_parameter("weight", uniform({out, in}, -k, k));
    if (has_bias) bias = register_parameter("bias", uniform({out}, -k, k));
}

Tensor Linear::forward(const Tensor& x) const {
    if (!x.defined() || x.dim() == 0 || x.shape().back() != in_features)
        throw ShapeError(fmt::format("Linear({}, {}): input of shape {}: the last axis must have size {}",
                                     in_features, out_features, x.defined() ? shape_str(x.shape()) : "undefined",
                                     in_features));
    if (x.dtype() != weight.dtype())
        throw DTypeError(fmt::format("Linear({}, {}): input of shape {} is {} but the parameters are {}; convert one "
                                     "with .to()",
                                     in_features, out_features, shape_str(x.shape()), dtype_name(x.dtype()),
                                     dtype_name(weight.dtype())));
    return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
    return fmt::format("in_features={}, out_features={}, bias={}", in_features, out_features, bias.defined());
}

Embedding::Embedding(std::size_t num, std::size_t dim, std::optional<std::int64_t> pad)
    : num_embeddings(num), embedding_dim(dim), padding_idx(pad) {
    if (num == 0 || dim == 0)
        throw ValueError(fmt::format("Embedding: num_embeddings {} and embedding_dim {} must be positive", num, dim));
    if (pad && (*pad < 0 || *pad >= static_cast<std::int64_t>(num)))
        throw ValueError(fmt::format("Embedding({}, {}): padding_idx {} is out of range [0, {})", num, dim, *pad, num));
    Tensor w = randn({num, dim});
    if (pad) {
        auto& v = w.mutable_value<float>();
        for (std::size_t j = 0; j < dim; ++j) v(static_cast<std::size_t>(*pad), j) = 0.f;
    }
    weight = register_parameter("weight", w);
}

Tensor Embedding::forward(const xt::xarray<std::int64_t>& ids) const {
    Tensor out;
    try {
        out = embedding(weight, ids);
    } catch (const ValueError& e) {  // an id out of range: say which layer refused it
        throw ValueError(fmt::format("Embedding({}, {}): {}", num_embeddings, embedding_dim, e.what()));
    }
    if (!padding_idx) return out;
    // Zero the padding positions; selecting with the mask also keeps gradient off that row.
    Shape ms(ids.shape().begin(), ids.shape().end());
    ms.push_back(1);
    Tensor mask = ones(ms, weight.dtype());
    bool any = false;
    for (std::size_t i = 0; i < ids.size(); ++i)
        if (ids.data()[i] == *padding_idx) {
            std::visit([i](auto& a) { a.data()[i] = 0; }, mask.mutable_array());
            any = true;
        }
    return any ? where(mask, out, 0.0) : out;  // selected, so even a NaN in that row stays out
}

std::string Embedding::extra_repr() const {
    return padding_idx ? fmt::format("{}, {}, padding_idx={}", num_embeddings, embedding_dim, *padding_idx)
                       : fmt::format("{}, {}", num_embeddings, embedding_dim);
}

}  // namespace tapegrad::nn
