/// \file
/// \brief Loss modules, thin wrappers over the op library's losses.
/// \ingroup modules
///
/// Loss modules, thin wrappers over the op library's losses (autograd/functional.hpp)
/// that keep their options, for code written in the PyTorch module style.
#pragma once

#include <cstdint>

#include "../../autograd/functional.hpp"
#include "module.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// cross_entropy() as a module (PyTorch's CrossEntropyLoss): logits [.., C], targets [..].
class CrossEntropyLoss : public Module {
public:
    /// The options every call uses.
    explicit CrossEntropyLoss(CrossEntropyOptions options = {}) : options(std::move(options)) {}
    /// cross_entropy(logits, targets, options), with its errors.
    Tensor operator()(const Tensor& logits, const xt::xarray<std::int64_t>& targets) const {
        return cross_entropy(logits, targets, options);
    }
    std::string type_name() const override { return "CrossEntropyLoss"; }  ///< "CrossEntropyLoss"
    CrossEntropyOptions options;  ///< ignore_index, weight, reduction
};

/// nll_loss() as a module (PyTorch's NLLLoss): log-probabilities [.., C], targets [..].
class NLLLoss : public Module {
public:
    /// The options every call uses.
    explicit NLLLoss(CrossEntropyOptions options = {}) : options(std::move(options)) {}
    /// nll_loss(log_probs, targets, options), with its errors.
    Tensor operator()(const Tensor& log_probs, const xt::xarray<std::int64_t>& targets) const {
        return nll_loss(log_probs, targets, options);
    }
    std::string type_name() const override { return "NLLLoss"; }  ///< "NLLLoss"
    CrossEntropyOptions options;  ///< ignore_index, weight, reduction
};

/// mse_loss() as a module (PyTorch's MSELoss).
class MSELoss : public Module {
public:
    /// The reduction every call uses.
    explicit MSELoss(Reduction reduction = Reduction::mean) : reduction(reduction) {}
    /// mse_loss(pred, target, reduction): shapes must be equal (ShapeError otherwise).
    Tensor operator()(const Tensor& pred, const Tensor& target) const { return mse_loss(pred, target, reduction); }
    std::string type_name() const override { return "MSELoss"; }  ///< "MSELoss"
    Reduction reduction;  ///< mean, sum or none
};

/// binary_cross_entropy_with_logits() as a module (PyTorch's BCEWithLogitsLoss).
class BCEWithLogitsLoss : public Module {
public:
    /// The reduction every call uses.
    explicit BCEWithLogitsLoss(Reduction reduction = Reduction::mean) : reduction(reduction) {}
    /// binary_cross_entropy_with_logits(logits, targets, reduction), with its errors.
    Tensor operator()(const Tensor& logits, const Tensor& targets) const {
        return binary_cross_entropy_with_logits(logits, targets, reduction);
    }
    std::string type_name() const override { return "BCEWithLogitsLoss"; }  ///< "BCEWithLogitsLoss"
    Reduction reduction;  ///< mean, sum or none
};

/// @}
}  // namespace tapegrad::nn
