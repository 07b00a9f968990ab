// tapegrad::nn: learning-rate schedulers, as torch.optim.lr_scheduler. Each sets the learning rate
// of every parameter group of one optimizer. The epoch-based ones compute it in closed form from
// the group's base rate and the epoch count (PyTorch's closed forms), so a scheduler restored from
// its state_dict continues exactly; ReduceLROnPlateau reacts to a metric instead.
//   nn::LinearLR warmup(opt, {.start_factor = 0.1, .total_iters = 5});
//   nn::CosineAnnealingLR decay(opt, {.T_max = 45});
//   nn::SequentialLR sched(opt, {&warmup, &decay}, {5});
//   for (epoch ...) { train(...); sched.step(); }
// As in PyTorch, creating a scheduler sets the learning rate of epoch 0, and step() is called
// after the epoch's optimizer steps.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "../layers/module.hpp"
#include "optim.hpp"

namespace tapegrad::nn {

// What every scheduler has: its optimizer, an epoch count, and a state for checkpoints.
class LRScheduler {
public:
    virtual ~LRScheduler() = default;
    LRScheduler(const LRScheduler&) = delete;
    LRScheduler& operator=(const LRScheduler&) = delete;

    virtual std::string type_name() const = 0;
    Optimizer& optimizer() const { return optimizer_; }
    // step() calls so far (0 after construction: PyTorch's last_epoch).
    std::size_t last_epoch() const { return last_epoch_; }
    // The rate each group's schedule starts from (PyTorch's base_lrs, the groups' initial_lr).
    const std::vector<double>& base_lrs() const { return base_lrs_; }
    // The rates the last step set, one per group (PyTorch's get_last_lr()).
    const std::vector<double>& last_lr() const { return last_lr_; }

    // "type" (type_name() as bytes), "last_epoch", "base_lrs" and "last_lr" ([groups] float64),
    // plus each scheduler's own entries.
    NamedTensors state_dict() const;
    // Restores what state_dict() gave, every problem listed in one ValueError (another type, another
    // number of groups, a bad count), and then nothing changes. The optimizer's learning rates are
    // restored by its own load_state_dict, as in PyTorch.
    void load_state_dict(const NamedTensors& state);

protected:
    explicit LRScheduler(Optimizer& optimizer);
    // The groups' initial_lr, set to their current rate where no scheduler set it yet (PyTorch's
    // setdefault), so a second scheduler on the optimizer starts from the same base.
    static std::vector<double> initial_lrs(Optimizer& optimizer);
    // Sets every group's rate (each checked: finite and >= 0) and last_lr.
    void apply(const std::vector<double>& lrs);
    // A scheduler's own state: written into out; read (and erased) from `given`, problems listed,
    // returning what applies the state once every check passed.
    virtual void save_own(NamedTensors& out) const;
    virtual std::function<void()> load_own(std::map<std::string, Tensor>& given, std::vector<std::string>& problems);
    // Checks the state of s (entry names without `prefix`, which only names them in problems) and
    // returns what applies it; SequentialLR loads its schedulers' states through this.
    static std::function<void()> prepare_load(LRScheduler& s, std::map<std::string, Tensor> given,
                                              std::vector<std::string>& problems, const std::string& prefix);

    Optimizer& optimizer_;
    std::size_t last_epoch_ = 0;
    std::vector<double> base_lrs_, last_lr_;
};

// A schedule that is a function of the epoch: lr = lr_at(epoch, group).
class EpochLRScheduler : public LRScheduler {
public:
    // Next epoch: sets every group's rate to lr_at(last_epoch() + 1, group). A rate that is not
    // finite or negative (a LambdaLR's) is a ValueError, and then nothing changes.
    void step();
    // Group g's rate at `epoch`, in closed form from base_lrs()[g].
    virtual double lr_at(std::size_t epoch, std::size_t group) const = 0;

protected:
    explicit EpochLRScheduler(Optimizer& optimizer);
    // Sets epoch 0's rates; called at the end of each derived constructor (lr_at is virtual).
    void start();
};

// lr = base * gamma^(epoch / step_size): decays by gamma every step_size epochs.
struct StepLROptions {
    std::size_t step_size = 0;  // required, >= 1
    double gamma = 0.1;         // > 0
};
class StepLR : public EpochLRScheduler {
public:
    StepLR(Optimizer& optimizer, StepLROptions options);
    std::string type_name() const override { return "StepLR"; }
    double lr_at(std::size_t epoch, std::size_t group) const override;
    const StepLROptions options;
};

// lr = base * gamma^(number of milestones <= epoch); a milestone given twice counts twice, as in PyTorch.
struct MultiStepLROptions {
    std::vector<std::size_t> milestones{};  // epochs, in any order
    double gamma = 0.1;                   // > 0
};
class MultiStepLR : public EpochLRScheduler {
public:
    MultiStepLR(Optimizer& optimizer, MultiStepLROptions options);
    std::string type_name() const override { return "MultiStepLR"; }
    double lr_at(std::size_t epoch, std::size_t group) const override;
    const MultiStepLROptions options;  // milestones sorted
};

// lr = base * gamma^epoch.
struct ExponentialLROptions {
    double gamma = 0.0;  // required, > 0
};
class ExponentialLR : public EpochLRScheduler {
public:
    ExponentialLR(Optimizer& optimizer, ExponentialLROptions options);
    std::string type_name() const override { return "ExponentialLR"; }
    double lr_at(std::size_t epoch, std::size_t group) const override;
    const ExponentialLROptions options;
};

// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2: from base down to eta_min over
// T_max epochs (and, past T_max, back up along the same cosine, as PyTorch's does).
struct CosineAnnealingLROptions {
    std::size_t T_max = 0;  // required, >= 1
    double eta_min = 0.0;   // >= 0
};
class CosineAnnealingLR : public EpochLRScheduler {
public:
    CosineAnnealingLR(Optimizer& optimizer, CosineAnnealingLROptions options);
    std::string type_name() const override { return "CosineAnnealingLR"; }
    double lr_at(std::size_t epoch, std::size_t group) const override;
    const CosineAnnealingLROptions options;
};

// lr = base * (start + (end - start) min(epoch, total_iters) / total_iters): a linear warm-up
// (or decay) of the factor from start_factor to end_factor, then constant.
struct LinearLROptions {
    double start_factor = 1.0 / 3.0;  // in (0, 1]
    double end_factor = 1.0;          // in [0, 1]
    std::size_t total_iters = 5;      // >= 1
};
class LinearLR : public EpochLRScheduler {
public:
    LinearLR(Optimizer& optimizer, LinearLROptions options = {});
    std::string type_name() const override { return "LinearLR"; }
    double lr_at(std::size_t epoch, std::size_t group) const override;
    const LinearLROptions options;
};

// lr = base * lambda(epoch), one function for every group or one per group. The functions are not
// part of the state: a restored LambdaLR must be built with the same ones.
using LRLambda = std::function<double(std::size_t epoch)>;
class LambdaLR : public EpochLRScheduler {
public:
    LambdaLR(Optimizer& optimizer, LRLambda lambda);
    LambdaLR(Optimizer& optimizer, std::vector<LRLambda> per_group);
    std::string type_name() const override { return "LambdaLR"; }
    double lr_at(std::size_t epoch, std::size_t group) const override;

private:
    std::vector<LRLambda> lambdas_;
};

// One schedule after another: scheduler i runs from milestones[i-1] (its own epoch 0 there) to
// milestones[i], as PyTorch's SequentialLR. The schedulers (on the same optimizer, one more than
// there are milestones, which increase) are driven through lr_at only and must outlive this one;
// their states are part of this one's.
class SequentialLR : public EpochLRScheduler {
public:
    SequentialLR(Optimizer& optimizer, std::vector<EpochLRScheduler*> schedulers, std::vector<std::size_t> milestones);
    std::string type_name() const override { return "SequentialLR"; }
    double lr_at(std::size_t epoch, std::size_t group) const override;

private:
    void save_own(NamedTensors& out) const override;
    std::function<void()> load_own(std::map<std::string, Tensor>& given, std::vector<std::string>& problems) override;
    std::vector<EpochLRScheduler*> schedulers_;
    std::vector<std::size_t> milestones_;
};

enum class PlateauMode { min, max };     // the metric should go down (a loss) or up (an accuracy)
enum class ThresholdMode { rel, abs };  // what counts as better: by a fraction, or by an amount

struct ReduceLROnPlateauOptions {
    PlateauMode mode = PlateauMode::min;
    double factor = 0.1;          // new lr = lr * factor; in (0, 1)
    std::size_t patience = 10;    // bad epochs tolerated before reducing
    double threshold = 1e-4;      // >= 0
    ThresholdMode threshold_mode = ThresholdMode::rel;
    std::size_t cooldown = 0;     // epochs after a reduction during which bad epochs are not counted
    double min_lr = 0.0;          // >= 0, for every group...
    std::vector<double> min_lrs{};  // ...unless given here, one per group
    double eps = 1e-8;            // a reduction smaller than this is skipped
};
// Reduces every group's rate by `factor` when the metric has not improved for more than `patience`
// epochs, as PyTorch's ReduceLROnPlateau. Better means, with best the best metric so far:
// min/rel: metric < best (1 - threshold); min/abs: metric < best - threshold; max/rel:
// metric > best (1 + threshold); max/abs: metric > best + threshold. A NaN metric is never better.
class ReduceLROnPlateau : public LRScheduler {
public:
    ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
    std::string type_name() const override { return "ReduceLROnPlateau"; }
    void step(double metric);
    double best() const { return best_; }
    std::size_t num_bad_epochs() const { return num_bad_epochs_; }
    std::size_t cooldown_counter() const { return cooldown_counter_; }
    const ReduceLROnPlateauOptions options;

private:
    bool is_better(double a) const;
    void save_own(NamedTensors& out) const override;
    std::function<void()> load_own(std::map<std::string, Tensor>& given, std::vector<std::string>& problems) override;
    std::vector<double> min_lrs_;
    double best_;
    std::size_t num_bad_epochs_ = 0, cooldown_counter_ = 0;
};

}  // namespace tapegrad::nn
