// tapegrad::nn: optimizers with per-parameter state and parameter groups. Update rules follow
// PyTorch's documentation (torch.optim), so the same gradients give the same steps. Parameters
// without a gradient are skipped, as in PyTorch. Each optimizer takes either one list of
// parameters with one options struct, or a list of groups (its own XGroup type), each with its
// own parameters and any options that differ from the defaults, as torch.optim's param groups:
//   nn::SGD opt({{.params = encoder.parameters(), .lr = 0.1}, {.params = head.parameters()}},
//               {.lr = 0.01, .momentum = 0.9});
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "../layers/module.hpp"

namespace tapegrad::nn {

class LRScheduler;

// One parameter group as the optimizer keeps it: its parameters and current learning rate.
struct ParamGroup {
    std::vector<Tensor> params;
    double lr = 0.0;
    // The learning rate schedules count from (PyTorch's "initial_lr"): set by the first scheduler
    // created on the optimizer, and kept by later ones, so two schedulers agree on it.
    std::optional<double> initial_lr{};
};

class Optimizer {
public:
    // What a derived optimizer gives the base class for each group: the parameters, the learning
    // rate, and the names of the per-parameter state slots its update rule uses for that group.
    struct GroupSpec {
        std::vector<Tensor> params;
        double lr = 0.0;
        std::vector<std::string> slot_names;
    };
    // One group holding every parameter.
    Optimizer(std::vector<Tensor> params, double lr, std::vector<std::string> slot_names);
    // Several groups (at least one). A parameter may appear in one group only.
    explicit Optimizer(std::vector<GroupSpec> groups);
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    void step();      // one update of every parameter that has a gradient
    void zero_grad();  // drops the parameters' gradients
    // The first group's learning rate (the learning rate, when there is one group).
    double lr() const { return groups_[0].lr; }
    // Sets every group's learning rate.
    void set_lr(double lr);
    // One group's learning rate; g out of range is a ValueError.
    double group_lr(std::size_t g) const;
    void set_group_lr(std::size_t g, double lr);
    const std::vector<ParamGroup>& param_groups() const { return groups_; }
    std::size_t steps() const { return steps_; }
    // Every parameter, group after group: the index i of "i.exp_avg" in state_dict().
    const std::vector<Tensor>& params() const { return params_; }
    // The group parameter i (in params() order) belongs to.
    std::size_t group_of(std::size_t i) const { return group_of_[i]; }

    // Per-parameter state ("3.exp_avg" = slot exp_avg of parameter 3, "3.step" its update count),
    // "step" (calls to step()), "type" (type_name() as one byte per float64 element), and each
    // group's learning rate ("group.0.lr", and "group.0.initial_lr" once a scheduler set it), for
    // checkpoints.
    NamedTensors state_dict() const;
    // Restores what state_dict() gave, checking names and shapes (every mismatch listed). The state
    // of another optimizer type (SGD's into Adam) is refused, naming both types. A state without
    // "type" and "group." entries (saved before groups existed) loads, leaving the learning rates.
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
    // The learning rate of parameter i's group.
    double lr_of(std::size_t i) const { return groups_[group_of_[i]].lr; }

private:
    friend class LRScheduler;  // sets initial_lr, as PyTorch's schedulers do

    std::vector<ParamGroup> groups_;
    std::vector<std::vector<std::string>> group_slots_;  // [group][slot]
    std::vector<Tensor> params_;                        // every group's parameters, in group order
    std::vector<std::size_t> group_of_;                 // [param]
    std::vector<std::vector<Tensor>> slots_;            // [param][slot], zeros created on first use
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
// A parameter group of SGD: an option left empty takes the optimizer's default.
struct SGDGroup {
    std::vector<Tensor> params{};
    std::optional<double> lr{}, momentum{}, dampening{}, weight_decay{};
    std::optional<bool> nesterov{};
};
class SGD : public Optimizer {
public:
    SGD(std::vector<Tensor> params, SGDOptions options = {});
    SGD(std::vector<SGDGroup> groups, SGDOptions defaults = {});
    std::string type_name() const override { return "SGD"; }
    const SGDOptions options;  // the defaults
    // Group g's options, as given at construction (its current learning rate is group_lr(g)).
    const SGDOptions& group_options(std::size_t g) const { return group_options_.at(g); }

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
    std::vector<SGDOptions> group_options_;
};

struct AdagradOptions {
    double lr = 0.01;
    double lr_decay = 0.0;
    double weight_decay = 0.0;
    double initial_accumulator_value = 0.0;
    double eps = 1e-10;
};
struct AdagradGroup {
    std::vector<Tensor> params{};
    std::optional<double> lr{}, lr_decay{}, weight_decay{}, initial_accumulator_value{}, eps{};
};
class Adagrad : public Optimizer {
public:
    Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
    Adagrad(std::vector<AdagradGroup> groups, AdagradOptions defaults = {});
    std::string type_name() const override { return "Adagrad"; }
    const AdagradOptions options;  // the defaults
    const AdagradOptions& group_options(std::size_t g) const { return group_options_.at(g); }

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
    std::vector<AdagradOptions> group_options_;
};

struct RMSpropOptions {
    double lr = 0.01;
    double alpha = 0.99;
    double eps = 1e-8;
    double weight_decay = 0.0;
    double momentum = 0.0;
    bool centered = false;
};
struct RMSpropGroup {
    std::vector<Tensor> params{};
    std::optional<double> lr{}, alpha{}, eps{}, weight_decay{}, momentum{};
    std::optional<bool> centered{};
};
class RMSprop : public Optimizer {
public:
    RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
    RMSprop(std::vector<RMSpropGroup> groups, RMSpropOptions defaults = {});
    std::string type_name() const override { return "RMSprop"; }
    const RMSpropOptions options;  // the defaults
    const RMSpropOptions& group_options(std::size_t g) const { return group_options_.at(g); }

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
    std::vector<RMSpropOptions> group_options_;
};

struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled decay
    bool amsgrad = false;
};
// A parameter group of Adam or AdamW.
struct AdamGroup {
    std::vector<Tensor> params{};
    std::optional<double> lr{}, beta1{}, beta2{}, eps{}, weight_decay{};
    std::optional<bool> amsgrad{};
};
class Adam : public Optimizer {
public:
    Adam(std::vector<Tensor> params, AdamOptions options = {});
    Adam(std::vector<AdamGroup> groups, AdamOptions defaults = {});
    std::string type_name() const override { return decoupled_ ? "AdamW" : "Adam"; }
    const AdamOptions options;  // the defaults
    const AdamOptions& group_options(std::size_t g) const { return group_options_.at(g); }

protected:
    Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled);
    Adam(std::vector<AdamGroup> groups, AdamOptions defaults, bool decoupled);

private:
    template <class T>
    void run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh);
    void update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool fresh) override;
    void update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool fresh) override;
    bool decoupled_;
    std::vector<AdamOptions> group_options_;
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
    AdamW(std::vector<AdamGroup> groups, AdamWOptions defaults = {});
};

// Rescales all gradients together so their global L2 norm is at most max_norm; returns the norm
// before clipping. A non-finite norm is an error naming the first parameter with a NaN or Inf
// gradient (unless error_if_nonfinite is false, when the gradients are left as they are).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite = true);
// Clamps every gradient element into [-clip_value, clip_value].
void clip_grad_value(const std::vector<Tensor>& params, double clip_value);

}  // namespace tapegrad::nn
