// tapegrad::nn: loss modules, thin wrappers over the op library's losses (autograd/functional.hpp)
// that keep their options, for code written in the PyTorch module style.
#pragma once

#include <cstdint>

#include "../../autograd/functional.hpp"
#include "module.hpp"

namespace tapegrad::nn {

class CrossEntropyLoss : public Module {
public:
    explicit CrossEntropyLoss(CrossEntropyOptions options = {}) : options(std::move(options)) {}
    Tensor operator()(const Tensor& logits, const xt::xarray<std::int64_t>& targets) const {
        return cross_entropy(logits, targets, options);
    }
    std::string type_name() const override { return "CrossEntropyLoss"; }
    CrossEntropyOptions options;
};

class NLLLoss : public Module {
public:
    explicit NLLLoss(CrossEntropyOptions options = {}) : options(std::move(options)) {}
    Tensor operator()(const Tensor& log_probs, const xt::xarray<std::int64_t>& targets) const {
        return nll_loss(log_probs, targets, options);
    }
    std::string type_name() const override { return "NLLLoss"; }
    CrossEntropyOptions options;
};

class MSELoss : public Module {
public:
    explicit MSELoss(Reduction reduction = Reduction::mean) : reduction(reduction) {}
    Tensor operator()(const Tensor& pred, const Tensor& target) const { return mse_loss(pred, target, reduction); }
    std::string type_name() const override { return "MSELoss"; }
    Reduction reduction;
};

class BCEWithLogitsLoss : public Module {
public:
    explicit BCEWithLogitsLoss(Reduction reduction = Reduction::mean) : reduction(reduction) {}
    Tensor operator()(const Tensor& logits, const Tensor& targets) const {
        return binary_cross_entropy_with_logits(logits, targets, reduction);
    }
    std::string type_name() const override { return "BCEWithLogitsLoss"; }
    Reduction reduction;
};

}  // namespace tapegrad::nn
