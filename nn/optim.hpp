// tapegrad::nn: optimizers with per-parameter state and a settable learning rate. Update rules
// follow PyTorch's documentation (torch.optim), so the same gradients give the same steps.
// Parameters without a gradient are skipped, as in PyTorch.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "module.hpp"

namespace tapegrad::nn {

class Optimizer {
public:
    Optimizer(std::vector<Tensor> params, double lr, std::vector<std::string> slot_names);
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    void step();      // one update of every parameter that has a gradient
    void zero_grad();  // drops the parameters' gradients
    double lr() const { return lr_; }
    void set_lr(double lr);
    std::size_t steps() const { return steps_; }
    const std::vector<Tensor>& params() const { return params_; }

    // Per-parameter state ("3.exp_avg" = slot exp_avg of parameter 3, "3.step" its update count)
    // plus "step" (calls to step()), for checkpoints.
    NamedTensors state_dict() const;
    // Restores what state_dict() gave, checking names and shapes (every mismatch listed).
    void load_state_dict(const NamedTensors& state);

    virtual std::string type_name() const = 0;

protected:
    // Update parameter i: p, g and the slots are contiguous arrays of n elements; fresh is true when
    // the slots were just created (zero-filled) for this parameter's first update.
    virtual void update(std::size_t i, float* p, const float* g, std::vector<float*>& slots, std::size_t n,
                        bool fresh) = 0;
    virtual void update(std::size_t i, double* p, const double* g, std::vector<double*>& slots, std::size_t n,
                        bool fresh) = 0;
    // How many updates parameter i has had, this one included (1 during its first), counted per
    // parameter as PyTorch does, so a parameter that skipped steps gets its own bias correction.
    std::size_t t(std::size_t i) const { return param_steps_[i]; }

private:
    std::vector<Tensor> params_;
    double lr_;
    std::vector<std::string> slot_names_;
    std::vector<std::vector<Tensor>> slots_;  // [param][slot], zeros created on first use
    std::vector<std::size_t> param_steps_;
    std::size_t steps_ = 0;
};

struct SGDOptions {
    double lr = 0.01;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
};
class SGD : public Optimizer {
public:
    SGD(std::vector<Tensor> params, SGDOptions options = {});
    std::string type_name() const override { return "SGD"; }
    const SGDOptions options;

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
};

struct AdagradOptions {
    double lr = 0.01;
    double lr_decay = 0.0;
    double weight_decay = 0.0;
    double initial_accumulator_value = 0.0;
    double eps = 1e-10;
};
class Adagrad : public Optimizer {
public:
    Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
    std::string type_name() const override { return "Adagrad"; }
    const AdagradOptions options;

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
};

struct RMSpropOptions {
    double lr = 0.01;
    double alpha = 0.99;
    double eps = 1e-8;
    double weight_decay = 0.0;
    double momentum = 0.0;
    bool centered = false;
};
class RMSprop : public Optimizer {
public:
    RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
    std::string type_name() const override { return "RMSprop"; }
    const RMSpropOptions options;

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
};

struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled decay
    bool amsgrad = false;
};
class Adam : public Optimizer {
public:
    Adam(std::vector<Tensor> params, AdamOptions options = {});
    std::string type_name() const override { return decoupled_ ? "AdamW" : "Adam"; }
    const AdamOptions options;

protected:
    Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled);

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
    bool decoupled_;
};

// AdamW's options: Adam's, but weight_decay defaults to 1e-2 as in PyTorch (so AdamW(params,
// {.lr = 3e-3}) keeps the default decay).
struct AdamWOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 1e-2;
    bool amsgrad = false;
};
// Adam with decoupled weight decay: p -= lr * weight_decay * p before the Adam step.
class AdamW : public Adam {
public:
    AdamW(std::vector<Tensor> params, AdamWOptions options = {});
};

// Rescales all gradients together so their global L2 norm is at most max_norm; returns the norm
// before clipping. A non-finite norm is an error naming the first parameter with a NaN or Inf
// gradient (unless error_if_nonfinite is false, when the gradients are left as they are).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite = true);
// Clamps every gradient element into [-clip_value, clip_value].
void clip_grad_value(const std::vector<Tensor>& params, double clip_value);

}  // namespace tapegrad::nn
