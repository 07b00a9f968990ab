/// \file
/// \brief Optimizers with per-parameter state and parameter groups, and gradient clipping.
/// \ingroup training
///
/// Optimizers with per-parameter state and parameter groups. Update rules follow
/// PyTorch's documentation (torch.optim), so the same gradients give the same steps. Parameters
/// without a gradient are skipped, as in PyTorch. Each optimizer takes either one list of
/// parameters with one options struct, or a list of groups (its own XGroup type), each with its
/// own parameters and any options that differ from the defaults, as torch.optim's param groups:
///
/// \snippet test_libtorch_guide.cpp param_groups
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "../layers/module.hpp"

namespace tapegrad::nn {

/// \addtogroup training
/// @{

class LRScheduler;

/// One parameter group as the optimizer keeps it: its parameters and current learning rate.
struct ParamGroup {
    std::vector<Tensor> params;  ///< the group's parameters (leaf tensors)
    double lr = 0.0;             ///< its current learning rate (schedulers change it)
    /// The learning rate schedules count from (PyTorch's "initial_lr"): set by the first scheduler
    /// created on the optimizer, and kept by later ones, so two schedulers agree on it.
    std::optional<double> initial_lr{};
};

/// The base of every optimizer: parameter groups, per-parameter state slots, step(), zero_grad()
/// and state_dict() for checkpoints. A derived class supplies the update rule (update()) for float
/// and double; the base class skips parameters without a gradient and creates each parameter's
/// slots (zero-filled) at its first update.
///
/// Every constructor checks its parameters: no group, an empty group, a parameter that is not a
/// leaf, a parameter given twice, or a learning rate that is negative or not finite is a
/// ValueError. step() throws UsageError if a parameter's dtype or shape changed since its state
/// was created (make a new optimizer after `module.to(dtype)`).
///
/// \snippet test_libtorch_guide.cpp optim_step
class Optimizer {
public:
    /// What a derived optimizer gives the base class for each group: the parameters, the learning
    /// rate, and the names of the per-parameter state slots its update rule uses for that group.
    struct GroupSpec {
        std::vector<Tensor> params;           ///< the group's parameters
        double lr = 0.0;                      ///< its learning rate
        std::vector<std::string> slot_names;  ///< state slots per parameter ("exp_avg", ...)
    };
    /// One group holding every parameter.
    Optimizer(std::vector<Tensor> params, double lr, std::vector<std::string> slot_names);
    /// Several groups (at least one). A parameter may appear in one group only.
    explicit Optimizer(std::vector<GroupSpec> groups);
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    void step();      ///< one update of every parameter that has a gradient
    void zero_grad();  ///< drops the parameters' gradients
    /// The first group's learning rate (the learning rate, when there is one group).
    double lr() const { return groups_[0].lr; }
    /// Sets every group's learning rate.
    void set_lr(double lr);
    /// One group's learning rate; g out of range is a ValueError.
    double group_lr(std::size_t g) const;
    /// Sets group g's learning rate; g out of range, or a negative or non-finite lr, is a ValueError.
    void set_group_lr(std::size_t g, double lr);
    /// The groups, in the order given at construction.
    const std::vector<ParamGroup>& param_groups() const { return groups_; }
    /// How many times step() has run.
    std::size_t steps() const { return steps_; }
    /// Every parameter, group after group: the index i of "i.exp_avg" in state_dict().
    const std::vector<Tensor>& params() const { return params_; }
    /// The group parameter i (in params() order) belongs to.
    std::size_t group_of(std::size_t i) const { return group_of_[i]; }

    /// Per-parameter state ("3.exp_avg" = slot exp_avg of parameter 3, "3.step" its update count),
    /// "step" (calls to step()), "type" (type_name() as one byte per float64 element), and each
    /// group's learning rate ("group.0.lr", and "group.0.initial_lr" once a scheduler set it), for
    /// checkpoints.
    NamedTensors state_dict() const;
    /// Restores what state_dict() gave, checking names and shapes (every mismatch listed). The state
    /// of another optimizer type (SGD's into Adam) is refused, naming both types. A state without
    /// "type" and "group." entries (saved before groups existed) loads, leaving the learning rates.
    void load_state_dict(const NamedTensors& state);

    /// The optimizer's name ("SGD", "Adam", ...), stored in state_dict() and used in messages.
    virtual std::string type_name() const = 0;

protected:
    /// Update parameter i: p, g and the slots are contiguous arrays of n elements; fresh is true when
    /// the slots were just created (zero-filled) for this parameter's first update.
    virtual void update(std::size_t i, float* p, const float* g, std::vector<float*>& slots, std::size_t n,
                        bool fresh) = 0;
    /// The same update for a float64 parameter.
    virtual void update(std::size_t i, double* p, const double* g, std::vector<double*>& slots, std::size_t n,
                        bool fresh) = 0;
    /// How many updates parameter i has had, this one included (1 during its first), counted per
    /// parameter as PyTorch does, so a parameter that skipped steps gets its own bias correction.
    std::size_t t(std::size_t i) const { return param_steps_[i]; }
    /// The learning rate of parameter i's group.
    double lr_of(std::size_t i) const { return groups_[group_of_[i]].lr; }

private:
    friend class LRScheduler;  ///< sets initial_lr, as PyTorch's schedulers do

    std::vector<ParamGroup> groups_;
    std::vector<std::vector<std::string>> group_slots_;  ///< [group][slot]
    std::vector<Tensor> params_;                        ///< every group's parameters, in group order
    std::vector<std::size_t> group_of_;                 ///< [param]
    std::vector<std::vector<Tensor>> slots_;            ///< [param][slot], zeros created on first use
    std::vector<std::size_t> param_steps_;
    std::size_t steps_ = 0;
};

/// Options of SGD (torch.optim.SGD's, with its defaults).
struct SGDOptions {
    double lr = 0.01;            ///< learning rate, >= 0
    double momentum = 0.0;       ///< momentum factor, >= 0
    double dampening = 0.0;      ///< dampening of the momentum, in [0, 1]
    double weight_decay = 0.0;   ///< L2 penalty added to the gradient, >= 0
    bool nesterov = false;       ///< Nesterov momentum (needs momentum > 0 and dampening 0)
};
/// A parameter group of SGD: an option left empty takes the optimizer's default.
struct SGDGroup {
    std::vector<Tensor> params{};  ///< the group's parameters
    std::optional<double> lr{};            ///< SGDOptions::lr for this group
    std::optional<double> momentum{};      ///< SGDOptions::momentum for this group
    std::optional<double> dampening{};     ///< SGDOptions::dampening for this group
    std::optional<double> weight_decay{};  ///< SGDOptions::weight_decay for this group
    std::optional<bool> nesterov{};        ///< SGDOptions::nesterov for this group
};
/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight
/// decay, as torch.optim.SGD. Options out of range are a ValueError naming them.
class SGD : public Optimizer {
public:
    /// One group of parameters with these options.
    SGD(std::vector<Tensor> params, SGDOptions options = {});
    /// Several parameter groups; options a group leaves empty come from defaults.
    SGD(std::vector<SGDGroup> groups, SGDOptions defaults = {});
    std::string type_name() const override { return "SGD"; }  ///< "SGD"
    const SGDOptions options;  ///< the defaults
    /// Group g's options, as given at construction (its current learning rate is group_lr(g)).
    const SGDOptions& group_options(std::size_t g) const { return group_options_.at(g); }

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
    std::vector<SGDOptions> group_options_;
};

/// Options of Adagrad (torch.optim.Adagrad's, with its defaults).
struct AdagradOptions {
    double lr = 0.01;                        ///< learning rate, >= 0
    double lr_decay = 0.0;                   ///< lr / (1 + (t - 1) lr_decay) at update t, >= 0
    double weight_decay = 0.0;               ///< L2 penalty added to the gradient, >= 0
    double initial_accumulator_value = 0.0;  ///< starting value of the sum of squares, >= 0
    double eps = 1e-10;                      ///< added to the denominator
};
/// A parameter group of Adagrad: an option left empty takes the optimizer's default.
struct AdagradGroup {
    std::vector<Tensor> params{};                       ///< the group's parameters
    std::optional<double> lr{};                         ///< AdagradOptions::lr for this group
    std::optional<double> lr_decay{};                   ///< AdagradOptions::lr_decay for this group
    std::optional<double> weight_decay{};               ///< AdagradOptions::weight_decay for this group
    std::optional<double> initial_accumulator_value{};  ///< AdagradOptions::initial_accumulator_value
    std::optional<double> eps{};                        ///< AdagradOptions::eps for this group
};
/// Adagrad: each element's step is divided by the root of its accumulated squared gradients, as
/// torch.optim.Adagrad. Options out of range are a ValueError naming them.
class Adagrad : public Optimizer {
public:
    /// One group of parameters with these options.
    Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
    /// Several parameter groups; options a group leaves empty come from defaults.
    Adagrad(std::vector<AdagradGroup> groups, AdagradOptions defaults = {});
    std::string type_name() const override { return "Adagrad"; }  ///< "Adagrad"
    const AdagradOptions options;  ///< the defaults
    /// Group g's options, as given at construction (its current learning rate is group_lr(g)).
    const AdagradOptions& group_options(std::size_t g) const { return group_options_.at(g); }

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
    std::vector<AdagradOptions> group_options_;
};

/// Options of RMSprop (torch.optim.RMSprop's, with its defaults).
struct RMSpropOptions {
    double lr = 0.01;           ///< learning rate, >= 0
    double alpha = 0.99;        ///< smoothing constant of the squared-gradient average, in [0, 1]
    double eps = 1e-8;          ///< added to the denominator, > 0
    double weight_decay = 0.0;  ///< L2 penalty added to the gradient, >= 0
    double momentum = 0.0;      ///< momentum factor, >= 0
    bool centered = false;      ///< divide by the estimated variance rather than the second moment
};
/// A parameter group of RMSprop: an option left empty takes the optimizer's default.
struct RMSpropGroup {
    std::vector<Tensor> params{};          ///< the group's parameters
    std::optional<double> lr{};            ///< RMSpropOptions::lr for this group
    std::optional<double> alpha{};         ///< RMSpropOptions::alpha for this group
    std::optional<double> eps{};           ///< RMSpropOptions::eps for this group
    std::optional<double> weight_decay{};  ///< RMSpropOptions::weight_decay for this group
    std::optional<double> momentum{};      ///< RMSpropOptions::momentum for this group
    std::optional<bool> centered{};        ///< RMSpropOptions::centered for this group
};
/// RMSprop: steps divided by a running root mean square of the gradients, as torch.optim.RMSprop.
/// Options out of range are a ValueError naming them.
class RMSprop : public Optimizer {
public:
    /// One group of parameters with these options.
    RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
    /// Several parameter groups; options a group leaves empty come from defaults.
    RMSprop(std::vector<RMSpropGroup> groups, RMSpropOptions defaults = {});
    std::string type_name() const override { return "RMSprop"; }  ///< "RMSprop"
    const RMSpropOptions options;  ///< the defaults
    /// Group g's options, as given at construction (its current learning rate is group_lr(g)).
    const RMSpropOptions& group_options(std::size_t g) const { return group_options_.at(g); }

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
    std::vector<RMSpropOptions> group_options_;
};

/// Options of Adam (torch.optim.Adam's, with its defaults).
struct AdamOptions {
    double lr = 1e-3;           ///< learning rate, >= 0
    double beta1 = 0.9;         ///< decay of the first-moment average, in [0, 1)
    double beta2 = 0.999;       ///< decay of the second-moment average, in [0, 1)
    double eps = 1e-8;          ///< added to the denominator, > 0
    double weight_decay = 0.0;  ///< Adam: L2 added to the gradient; AdamW: decoupled decay
    bool amsgrad = false;       ///< use the maximum of the second moments so far (AMSGrad)
};
/// A parameter group of Adam or AdamW.
struct AdamGroup {
    std::vector<Tensor> params{};          ///< the group's parameters
    std::optional<double> lr{};            ///< AdamOptions::lr for this group
    std::optional<double> beta1{};         ///< AdamOptions::beta1 for this group
    std::optional<double> beta2{};         ///< AdamOptions::beta2 for this group
    std::optional<double> eps{};           ///< AdamOptions::eps for this group
    std::optional<double> weight_decay{};  ///< AdamOptions::weight_decay for this group
    std::optional<bool> amsgrad{};         ///< AdamOptions::amsgrad for this group
};
/// Adam, with bias correction counted per parameter, as torch.optim.Adam. Options out of range
/// are a ValueError naming them.
class Adam : public Optimizer {
public:
    /// One group of parameters with these options.
    Adam(std::vector<Tensor> params, AdamOptions options = {});
    /// Several parameter groups; options a group leaves empty come from defaults.
    Adam(std::vector<AdamGroup> groups, AdamOptions defaults = {});
    /// "Adam", or "AdamW" for the decoupled form.
    std::string type_name() const override { return decoupled_ ? "AdamW" : "Adam"; }
    const AdamOptions options;  ///< the defaults
    /// Group g's options, as given at construction (its current learning rate is group_lr(g)).
    const AdamOptions& group_options(std::size_t g) const { return group_options_.at(g); }

protected:
    /// For AdamW: decoupled = true applies weight decay to the parameter, not to the gradient.
    Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled);
    /// The grouped form of the constructor above.
    Adam(std::vector<AdamGroup> groups, AdamOptions defaults, bool decoupled);

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
    bool decoupled_;
    std::vector<AdamOptions> group_options_;
};

/// AdamW's options: Adam's, but weight_decay defaults to 1e-2 as in PyTorch (so AdamW(params,
/// {.lr = 3e-3}) keeps the default decay).
struct AdamWOptions {
    double lr = 1e-3;            ///< learning rate, >= 0
    double beta1 = 0.9;          ///< decay of the first-moment average, in [0, 1)
    double beta2 = 0.999;        ///< decay of the second-moment average, in [0, 1)
    double eps = 1e-8;           ///< added to the denominator, > 0
    double weight_decay = 1e-2;  ///< decoupled decay: p -= lr * weight_decay * p, >= 0
    bool amsgrad = false;        ///< use the maximum of the second moments so far (AMSGrad)
};
/// Adam with decoupled weight decay: p -= lr * weight_decay * p before the Adam step.
class AdamW : public Adam {
public:
    /// One group of parameters with these options.
    AdamW(std::vector<Tensor> params, AdamWOptions options = {});
    /// Several parameter groups; options a group leaves empty come from defaults.
    AdamW(std::vector<AdamGroup> groups, AdamWOptions defaults = {});
};

/// Rescales all gradients together so their global L2 norm is at most max_norm; returns the norm
/// before clipping. A non-finite norm is an error naming the first parameter with a NaN or Inf
/// gradient (unless error_if_nonfinite is false, when the gradients are left as they are).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite = true);
/// Clamps every gradient element into [-clip_value, clip_value].
void clip_grad_value(const std::vector<Tensor>& params, double clip_value);

/// @}
}  // namespace tapegrad::nn
