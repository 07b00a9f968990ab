/// \file
/// \brief Learning-rate schedulers, as torch.optim.lr_scheduler.
/// \ingroup training
///
/// Learning-rate schedulers, as torch.optim.lr_scheduler. Each sets the learning rate
/// of every parameter group of one optimizer. The epoch-based ones compute it in closed form from
/// the group's base rate and the epoch count (PyTorch's closed forms), so a scheduler restored from
/// its state_dict continues exactly; ReduceLROnPlateau reacts to a metric instead (LRScheduler
/// shows a warm-up followed by a cosine decay). As in PyTorch, creating a scheduler sets the
/// learning rate of epoch 0, and step() is called after the epoch's optimizer steps.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "../layers/module.hpp"
#include "optim.hpp"

namespace tapegrad::nn {

/// \addtogroup training
/// @{

/// What every scheduler has: its optimizer, an epoch count, and a state for checkpoints.
/// Options out of range are a ValueError from the constructor, naming the scheduler and the value.
///
/// \snippet test_libtorch_guide.cpp schedulers
class LRScheduler {
public:
    virtual ~LRScheduler() = default;
    LRScheduler(const LRScheduler&) = delete;
    LRScheduler& operator=(const LRScheduler&) = delete;

    /// The scheduler's name ("StepLR", ...), stored in state_dict().
    virtual std::string type_name() const = 0;
    /// The optimizer whose learning rates this scheduler sets.
    Optimizer& optimizer() const { return optimizer_; }
    /// step() calls so far (0 after construction: PyTorch's last_epoch).
    std::size_t last_epoch() const { return last_epoch_; }
    /// The rate each group's schedule starts from (PyTorch's base_lrs, the groups' initial_lr).
    const std::vector<double>& base_lrs() const { return base_lrs_; }
    /// The rates the last step set, one per group (PyTorch's get_last_lr()).
    const std::vector<double>& last_lr() const { return last_lr_; }

    /// "type" (type_name() as bytes), "last_epoch", "base_lrs" and "last_lr" ([groups] float64),
    /// plus each scheduler's own entries.
    NamedTensors state_dict() const;
    /// Restores what state_dict() gave, every problem listed in one ValueError (another type, another
    /// number of groups, a bad count), and then nothing changes. The optimizer's learning rates are
    /// restored by its own load_state_dict, as in PyTorch.
    void load_state_dict(const NamedTensors& state);

protected:
    /// Records the optimizer's groups' base rates (initial_lrs()) as base_lrs() and last_lr().
    explicit LRScheduler(Optimizer& optimizer);
    /// The groups' initial_lr, set to their current rate where no scheduler set it yet (PyTorch's
    /// setdefault), so a second scheduler on the optimizer starts from the same base.
    static std::vector<double> initial_lrs(Optimizer& optimizer);
    /// Sets every group's rate (each checked: finite and >= 0) and last_lr.
    void apply(const std::vector<double>& lrs);
    /// A scheduler's own state: written into out; read (and erased) from `given`, problems listed,
    /// returning what applies the state once every check passed.
    virtual void save_own(NamedTensors& out) const;
    /// The reading half of save_own(): checks the entries in `given`, erasing those it reads,
    /// appends each problem to `problems`, and returns what applies them.
    virtual std::function<void()> load_own(std::map<std::string, Tensor>& given, std::vector<std::string>& problems);
    /// Checks the state of s (entry names without `prefix`, which only names them in problems) and
    /// returns what applies it; SequentialLR loads its schedulers' states through this.
    static std::function<void()> prepare_load(LRScheduler& s, std::map<std::string, Tensor> given,
                                              std::vector<std::string>& problems, const std::string& prefix);

    Optimizer& optimizer_;         ///< the optimizer whose rates are set
    std::size_t last_epoch_ = 0;   ///< step() calls so far
    std::vector<double> base_lrs_;  ///< [groups] the rates the schedule starts from
    std::vector<double> last_lr_;   ///< [groups] the rates the last step set
};

/// A schedule that is a function of the epoch: lr = lr_at(epoch, group).
class EpochLRScheduler : public LRScheduler {
public:
    /// Next epoch: sets every group's rate to lr_at(last_epoch() + 1, group). A rate that is not
    /// finite or negative (a LambdaLR's) is a ValueError, and then nothing changes.
    void step();
    /// Group g's rate at `epoch`, in closed form from base_lrs()[g].
    virtual double lr_at(std::size_t epoch, std::size_t group) const = 0;

protected:
    /// Takes the optimizer; derived constructors call start() once their options are set.
    explicit EpochLRScheduler(Optimizer& optimizer);
    /// Sets epoch 0's rates; called at the end of each derived constructor (lr_at is virtual).
    void start();
};

/// Options of StepLR.
struct StepLROptions {
    std::size_t step_size = 0;  ///< required, >= 1
    double gamma = 0.1;         ///< > 0
};
/// lr = base * gamma^(epoch / step_size): decays by gamma every step_size epochs.
class StepLR : public EpochLRScheduler {
public:
    /// Sets epoch 0's rates; step_size 0 or gamma <= 0 is a ValueError.
    StepLR(Optimizer& optimizer, StepLROptions options);
    std::string type_name() const override { return "StepLR"; }  ///< "StepLR"
    double lr_at(std::size_t epoch, std::size_t group) const override;  ///< base * gamma^(epoch / step_size)
    const StepLROptions options;  ///< as given
};

/// Options of MultiStepLR.
struct MultiStepLROptions {
    std::vector<std::size_t> milestones{};  ///< epochs, in any order
    double gamma = 0.1;                   ///< > 0
};
/// lr = base * gamma^(number of milestones <= epoch); a milestone given twice counts twice, as in PyTorch.
class MultiStepLR : public EpochLRScheduler {
public:
    /// Sets epoch 0's rates; gamma <= 0 is a ValueError.
    MultiStepLR(Optimizer& optimizer, MultiStepLROptions options);
    std::string type_name() const override { return "MultiStepLR"; }  ///< "MultiStepLR"
    /// base * gamma^(number of milestones <= epoch)
    double lr_at(std::size_t epoch, std::size_t group) const override;
    const MultiStepLROptions options;  ///< milestones sorted
};

/// Options of ExponentialLR.
struct ExponentialLROptions {
    double gamma = 0.0;  ///< required, > 0
};
/// lr = base * gamma^epoch.
class ExponentialLR : public EpochLRScheduler {
public:
    /// Sets epoch 0's rates; gamma <= 0 is a ValueError.
    ExponentialLR(Optimizer& optimizer, ExponentialLROptions options);
    std::string type_name() const override { return "ExponentialLR"; }  ///< "ExponentialLR"
    double lr_at(std::size_t epoch, std::size_t group) const override;  ///< base * gamma^epoch
    const ExponentialLROptions options;  ///< as given
};

/// Options of CosineAnnealingLR.
struct CosineAnnealingLROptions {
    std::size_t T_max = 0;  ///< required, >= 1
    double eta_min = 0.0;   ///< >= 0
};
/// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2: from base down to eta_min over
/// T_max epochs (and, past T_max, back up along the same cosine, as PyTorch's does).
class CosineAnnealingLR : public EpochLRScheduler {
public:
    /// Sets epoch 0's rates; T_max 0 or a negative eta_min is a ValueError.
    CosineAnnealingLR(Optimizer& optimizer, CosineAnnealingLROptions options);
    std::string type_name() const override { return "CosineAnnealingLR"; }  ///< "CosineAnnealingLR"
    /// eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2
    double lr_at(std::size_t epoch, std::size_t group) const override;
    const CosineAnnealingLROptions options;  ///< as given
};

/// Options of LinearLR.
struct LinearLROptions {
    double start_factor = 1.0 / 3.0;  ///< in (0, 1]
    double end_factor = 1.0;          ///< in [0, 1]
    std::size_t total_iters = 5;      ///< >= 1
};
/// lr = base * (start + (end - start) min(epoch, total_iters) / total_iters): a linear warm-up
/// (or decay) of the factor from start_factor to end_factor, then constant.
class LinearLR : public EpochLRScheduler {
public:
    /// Sets epoch 0's rates; a factor out of range or total_iters 0 is a ValueError.
    LinearLR(Optimizer& optimizer, LinearLROptions options = {});
    std::string type_name() const override { return "LinearLR"; }  ///< "LinearLR"
    /// base * (start + (end - start) min(epoch, total_iters) / total_iters)
    double lr_at(std::size_t epoch, std::size_t group) const override;
    const LinearLROptions options;  ///< as given
};

/// A learning-rate factor as a function of the epoch, for LambdaLR.
using LRLambda = std::function<double(std::size_t epoch)>;
/// lr = base * lambda(epoch), one function for every group or one per group. The functions are not
/// part of the state: a restored LambdaLR must be built with the same ones.
class LambdaLR : public EpochLRScheduler {
public:
    /// One function for every group; an empty function is a ValueError.
    LambdaLR(Optimizer& optimizer, LRLambda lambda);
    /// One function per group (or a single one for all); another count, or an empty function, is a
    /// ValueError.
    LambdaLR(Optimizer& optimizer, std::vector<LRLambda> per_group);
    std::string type_name() const override { return "LambdaLR"; }  ///< "LambdaLR"
    double lr_at(std::size_t epoch, std::size_t group) const override;  ///< base * lambda(epoch)

private:
    std::vector<LRLambda> lambdas_;
};

/// One schedule after another: scheduler i runs from milestones[i-1] (its own epoch 0 there) to
/// milestones[i], as PyTorch's SequentialLR. The schedulers (on the same optimizer, one more than
/// there are milestones, which increase) are driven through lr_at only and must outlive this one;
/// their states are part of this one's.
class SequentialLR : public EpochLRScheduler {
public:
    /// No scheduler, a null one, one on another optimizer, the wrong number of milestones or
    /// milestones that do not increase strictly from 1 is a ValueError.
    SequentialLR(Optimizer& optimizer, std::vector<EpochLRScheduler*> schedulers, std::vector<std::size_t> milestones);
    std::string type_name() const override { return "SequentialLR"; }  ///< "SequentialLR"
    /// The rate of the scheduler whose span holds epoch, at its own epoch.
    double lr_at(std::size_t epoch, std::size_t group) const override;

private:
    void save_own(NamedTensors& out) const override;
    std::function<void()> load_own(std::map<std::string, Tensor>& given, std::vector<std::string>& problems) override;
    std::vector<EpochLRScheduler*> schedulers_;
    std::vector<std::size_t> milestones_;
};

/// Whether the metric should go down (a loss) or up (an accuracy).
enum class PlateauMode {
    min,  ///< lower is better
    max   ///< higher is better
};
/// What counts as better: by a fraction, or by an amount.
enum class ThresholdMode {
    rel,  ///< better by a fraction of the best so far
    abs   ///< better by an amount
};

/// Options of ReduceLROnPlateau (PyTorch's, with its defaults).
struct ReduceLROnPlateauOptions {
    PlateauMode mode = PlateauMode::min;  ///< whether the metric should go down or up
    double factor = 0.1;          ///< new lr = lr * factor; in (0, 1)
    std::size_t patience = 10;    ///< bad epochs tolerated before reducing
    double threshold = 1e-4;      ///< >= 0
    ThresholdMode threshold_mode = ThresholdMode::rel;  ///< how threshold is applied
    std::size_t cooldown = 0;     ///< epochs after a reduction during which bad epochs are not counted
    double min_lr = 0.0;          ///< >= 0, for every group...
    std::vector<double> min_lrs{};  ///< ...unless given here, one per group
    double eps = 1e-8;            ///< a reduction smaller than this is skipped
};
/// Reduces every group's rate by `factor` when the metric has not improved for more than `patience`
/// epochs, as PyTorch's ReduceLROnPlateau. Better means, with best the best metric so far:
/// min/rel: metric < best (1 - threshold); min/abs: metric < best - threshold; max/rel:
/// metric > best (1 + threshold); max/abs: metric > best + threshold. A NaN metric is never better.
class ReduceLROnPlateau : public LRScheduler {
public:
    /// Options out of range (factor, threshold, eps, min_lr, or min_lrs of another length than
    /// the groups) are a ValueError.
    ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
    std::string type_name() const override { return "ReduceLROnPlateau"; }  ///< "ReduceLROnPlateau"
    /// One epoch's metric (e.g. the validation loss): counts a bad epoch or a new best, and reduces
    /// the rates when the bad epochs exceed patience.
    void step(double metric);
    double best() const { return best_; }  ///< the best metric so far
    std::size_t num_bad_epochs() const { return num_bad_epochs_; }  ///< bad epochs since the last best
    /// Epochs left in the cooldown after a reduction.
    std::size_t cooldown_counter() const { return cooldown_counter_; }
    const ReduceLROnPlateauOptions options;  ///< as given

private:
    bool is_better(double a) const;
    void save_own(NamedTensors& out) const override;
    std::function<void()> load_own(std::map<std::string, Tensor>& given, std::vector<std::string>& problems) override;
    std::vector<double> min_lrs_;
    double best_;
    std::size_t num_bad_epochs_ = 0, cooldown_counter_ = 0;
};

/// @}
}  // namespace tapegrad::nn
