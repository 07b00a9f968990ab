// tapegrad::nn: the learning-rate schedulers. Every epoch-based one is its closed form, lr_at;
// state save and load are shared here, with a scheduler's own entries added by save_own/load_own.
#include "scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>

#include <fmt/format.h>

namespace tapegrad::nn {

namespace {
// Text as a float64 tensor of its bytes, and back (nullopt for anything else), as the optimizer's
// "type" entry.
Tensor encode_text(const std::string& s) {
    xt::xarray<double> a = xt::xarray<double>::from_shape({s.size()});
    for (std::size_t i = 0; i < s.size(); ++i) a.data()[i] = static_cast<unsigned char>(s[i]);
    return Tensor(std::move(a));
}
std::optional<std::string> decode_text(const Tensor& t) {
    if (!t.defined() || t.dim() != 1 || t.numel() > 256) return std::nullopt;
    std::string s;
    for (std::size_t i = 0; i < t.numel(); ++i) {
        const double c = t.at(i);
        if (!(c >= 32.0 && c <= 126.0) || c != std::floor(c)) return std::nullopt;
        s.push_back(static_cast<char>(c));
    }
    return s;
}
Tensor vector_tensor(const std::vector<double>& v) {
    xt::xarray<double> a = xt::xarray<double>::from_shape({v.size()});
    std::copy(v.begin(), v.end(), a.data());
    return Tensor(std::move(a));
}
bool is_count(double v) { return std::isfinite(v) && v >= 0 && v == std::floor(v) && v < 9007199254740992.0; }

// Takes entry `name` out of `given`: a count (a whole number >= 0), or nullopt with a problem listed.
std::optional<std::size_t> take_count(std::map<std::string, Tensor>& given, const std::string& name,
                                      std::vector<std::string>& problems, const std::string& prefix) {
    auto it = given.find(name);
    if (it == given.end()) {
        problems.push_back(fmt::format("missing '{}{}'", prefix, name));
        return std::nullopt;
    }
    const Tensor t = it->second;
    given.erase(it);
    if (!t.defined() || t.numel() != 1) {
        problems.push_back(fmt::format("'{}{}' is not one number", prefix, name));
        return std::nullopt;
    }
    if (!is_count(t.item())) {
        problems.push_back(fmt::format("'{}{}' is {}, not a count", prefix, name, t.item()));
        return std::nullopt;
    }
    return static_cast<std::size_t>(t.item());
}
// Takes entry `name` out of `given`: one learning rate (finite, >= 0) per group.
std::optional<std::vector<double>> take_rates(std::map<std::string, Tensor>& given, const std::string& name,
                                              std::size_t groups, std::vector<std::string>& problems,
                                              const std::string& prefix) {
    auto it = given.find(name);
    if (it == given.end()) {
        problems.push_back(fmt::format("missing '{}{}'", prefix, name));
        return std::nullopt;
    }
    const Tensor t = it->second;
    given.erase(it);
    if (!t.defined() || t.shape() != Shape{groups}) {
        problems.push_back(fmt::format("'{}{}' has shape {}, but the optimizer has {} parameter group(s)", prefix,
                                       name, t.defined() ? shape_str(t.shape()) : "(undefined)", groups));
        return std::nullopt;
    }
    std::vector<double> v(groups);
    for (std::size_t g = 0; g < groups; ++g) {
        v[g] = t.at(g);
        if (!std::isfinite(v[g]) || v[g] < 0) {
            problems.push_back(fmt::format("'{}{}' element {} is {}, not a learning rate", prefix, name, g, v[g]));
            return std::nullopt;
        }
    }
    return v;
}

void check_gamma(const char* type, double gamma) {
    if (!std::isfinite(gamma) || !(gamma > 0))
        throw ValueError(fmt::format("{}: gamma {} must be finite and > 0", type, gamma));
}
}  // namespace

// ---- LRScheduler --------------------------------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
    for (const ParamGroup& g : optimizer.param_groups()) last_lr_.push_back(g.lr);
    base_lrs_ = last_lr_;
}

std::vector<double> LRScheduler::initial_lrs(Optimizer& optimizer) {
    std::vector<double> out;
    for (ParamGroup& g : optimizer.groups_) {
        if (!g.initial_lr) g.initial_lr = g.lr;
        out.push_back(*g.initial_lr);
    }
    return out;
}

void LRScheduler::apply(const std::vector<double>& lrs) {
    for (std::size_t g = 0; g < lrs.size(); ++g)
        if (!std::isfinite(lrs[g]) || lrs[g] < 0)
            throw ValueError(fmt::format("{}: epoch {}: the learning rate of group {} would be {}", type_name(),
                                         last_epoch_, g, lrs[g]));
    for (std::size_t g = 0; g < lrs.size(); ++g) optimizer_.set_group_lr(g, lrs[g]);
    last_lr_ = lrs;
}

NamedTensors LRScheduler::state_dict() const {
    NamedTensors out;
    out.emplace_back("type", encode_text(type_name()));
    out.emplace_back("last_epoch", Tensor::scalar(static_cast<double>(last_epoch_), f64));
    out.emplace_back("base_lrs", vector_tensor(base_lrs_));
    out.emplace_back("last_lr", vector_tensor(last_lr_));
    save_own(out);
    return out;
}

void LRScheduler::save_own(NamedTensors&) const {}
std::function<void()> LRScheduler::load_own(std::map<std::string, Tensor>&, std::vector<std::string>&) {
    return [] {};
}

std::function<void()> LRScheduler::prepare_load(LRScheduler& s, std::map<std::string, Tensor> given,
                                                std::vector<std::string>& problems, const std::string& prefix) {
    if (auto it = given.find("type"); it == given.end()) {
        problems.push_back(fmt::format("missing '{}type'", prefix));
    } else {
        const std::optional<std::string> type = decode_text(it->second);
        if (!type) problems.push_back(fmt::format("'{}type' is not a scheduler's type name", prefix));
        else if (*type != s.type_name())
            problems.push_back(fmt::format("{}the state is of a {}, not of this {}",
                                           prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1) + ": ", *type,
                                           s.type_name()));
        given.erase(it);
    }
    const std::size_t groups = s.optimizer_.param_groups().size();
    const auto epoch = take_count(given, "last_epoch", problems, prefix);
    const auto base = take_rates(given, "base_lrs", groups, problems, prefix);
    const auto last = take_rates(given, "last_lr", groups, problems, prefix);
    std::function<void()> own = s.load_own(given, problems);
    for (const auto& [name, t] : given) problems.push_back(fmt::format("unexpected '{}{}'", prefix, name));
    if (!epoch || !base || !last) return [] {};  // problems listed: never applied
    return [&s, epoch = *epoch, base = *base, last = *last, own] {
        s.last_epoch_ = epoch;
        s.base_lrs_ = base;
        s.last_lr_ = last;
        own();
    };
}

void LRScheduler::load_state_dict(const NamedTensors& state) {
    std::map<std::string, Tensor> given;
    std::vector<std::string> problems;
    for (const auto& [name, t] : state)
        if (!given.emplace(name, t).second) problems.push_back(fmt::format("'{}' appears twice", name));
    std::function<void()> commit = prepare_load(*this, std::move(given), problems, "");
    if (!problems.empty())
        throw ValueError(fmt::format("{}: load_state_dict: {}", type_name(), fmt::join(problems, "; ")));
    commit();
}

// ---- epoch schedulers ---------------------------------------------------------------------------

EpochLRScheduler::EpochLRScheduler(Optimizer& optimizer) : LRScheduler(optimizer) {
    base_lrs_ = initial_lrs(optimizer);
}

void EpochLRScheduler::start() {
    std::vector<double> lrs;
    for (std::size_t g = 0; g < base_lrs_.size(); ++g) lrs.push_back(lr_at(0, g));
    apply(lrs);
}

void EpochLRScheduler::step() {
    std::vector<double> lrs;
    for (std::size_t g = 0; g < base_lrs_.size(); ++g) lrs.push_back(lr_at(last_epoch_ + 1, g));
    ++last_epoch_;
    try {
        apply(lrs);
    } catch (...) {
        --last_epoch_;
        throw;
    }
}

StepLR::StepLR(Optimizer& optimizer, StepLROptions o) : EpochLRScheduler(optimizer), options(o) {
    if (o.step_size == 0) throw ValueError("StepLR: step_size 0 must be >= 1");
    check_gamma("StepLR", o.gamma);
    start();
}
double StepLR::lr_at(std::size_t epoch, std::size_t g) const {
    return base_lrs_[g] * std::pow(options.gamma, static_cast<double>(epoch / options.step_size));
}

namespace {
MultiStepLROptions sorted(MultiStepLROptions o) {
    std::sort(o.milestones.begin(), o.milestones.end());
    return o;
}
}  // namespace
MultiStepLR::MultiStepLR(Optimizer& optimizer, MultiStepLROptions o)
    : EpochLRScheduler(optimizer), options(sorted(std::move(o))) {
    check_gamma("MultiStepLR", options.gamma);
    start();
}
double MultiStepLR::lr_at(std::size_t epoch, std::size_t g) const {
    const auto passed = std::upper_bound(options.milestones.begin(), options.milestones.end(), epoch) -
                        options.milestones.begin();  // PyTorch's bisect_right
    return base_lrs_[g] * std::pow(options.gamma, static_cast<double>(passed));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, ExponentialLROptions o) : EpochLRScheduler(optimizer), options(o) {
    check_gamma("ExponentialLR", o.gamma);
    start();
}
double ExponentialLR::lr_at(std::size_t epoch, std::size_t g) const {
    return base_lrs_[g] * std::pow(options.gamma, static_cast<double>(epoch));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, CosineAnnealingLROptions o)
    : EpochLRScheduler(optimizer), options(o) {
    if (o.T_max == 0) throw ValueError("CosineAnnealingLR: T_max 0 must be >= 1");
    if (!std::isfinite(o.eta_min) || o.eta_min < 0)
        throw ValueError(fmt::format("CosineAnnealingLR: eta_min {} must be finite and >= 0", o.eta_min));
    start();
}
double CosineAnnealingLR::lr_at(std::size_t epoch, std::size_t g) const {
    const double e = static_cast<double>(epoch), t = static_cast<double>(options.T_max);
    return options.eta_min + (base_lrs_[g] - options.eta_min) * (1 + std::cos(std::numbers::pi * e / t)) / 2;
}

LinearLR::LinearLR(Optimizer& optimizer, LinearLROptions o) : EpochLRScheduler(optimizer), options(o) {
    if (!(o.start_factor > 0 && o.start_factor <= 1))
        throw ValueError(fmt::format("LinearLR: start_factor {} must be in (0, 1]", o.start_factor));
    if (!(o.end_factor >= 0 && o.end_factor <= 1))
        throw ValueError(fmt::format("LinearLR: end_factor {} must be in [0, 1]", o.end_factor));
    if (o.total_iters == 0) throw ValueError("LinearLR: total_iters 0 must be >= 1");
    start();
}
double LinearLR::lr_at(std::size_t epoch, std::size_t g) const {
    const double e = static_cast<double>(std::min(epoch, options.total_iters));
    return base_lrs_[g] * (options.start_factor + (options.end_factor - options.start_factor) * e /
                                                      static_cast<double>(options.total_iters));
}

LambdaLR::LambdaLR(Optimizer& optimizer, LRLambda lambda)
    : LambdaLR(optimizer, std::vector<LRLambda>(optimizer.param_groups().size(), std::move(lambda))) {}
LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<LRLambda> per_group)
    : EpochLRScheduler(optimizer), lambdas_(std::move(per_group)) {
    if (lambdas_.size() != base_lrs_.size())
        throw ValueError(fmt::format("LambdaLR: {} function(s) for {} parameter group(s); give one, or one per group",
                                     lambdas_.size(), base_lrs_.size()));
    for (std::size_t g = 0; g < lambdas_.size(); ++g)
        if (!lambdas_[g]) throw ValueError(fmt::format("LambdaLR: the function of group {} is empty", g));
    start();
}
double LambdaLR::lr_at(std::size_t epoch, std::size_t g) const { return base_lrs_[g] * lambdas_[g](epoch); }

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<EpochLRScheduler*> schedulers,
                           std::vector<std::size_t> milestones)
    : EpochLRScheduler(optimizer), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
    if (schedulers_.empty()) throw ValueError("SequentialLR: no schedulers; give at least one");
    if (milestones_.size() + 1 != schedulers_.size())
        throw ValueError(fmt::format("SequentialLR: {} scheduler(s) need {} milestone(s), got {}", schedulers_.size(),
                                     schedulers_.size() - 1, milestones_.size()));
    for (std::size_t i = 0; i < schedulers_.size(); ++i) {
        if (!schedulers_[i]) throw ValueError(fmt::format("SequentialLR: scheduler {} is null", i));
        if (&schedulers_[i]->optimizer() != &optimizer)
            throw ValueError(fmt::format("SequentialLR: scheduler {} ({}) belongs to another optimizer", i,
                                         schedulers_[i]->type_name()));
    }
    for (std::size_t i = 0; i < milestones_.size(); ++i)
        if (milestones_[i] == 0 || (i > 0 && milestones_[i] <= milestones_[i - 1]))
            throw ValueError(fmt::format("SequentialLR: milestones [{}] must increase strictly from >= 1",
                                         fmt::join(milestones_, ", ")));
    start();
}
double SequentialLR::lr_at(std::size_t epoch, std::size_t g) const {
    const std::size_t i = static_cast<std::size_t>(std::upper_bound(milestones_.begin(), milestones_.end(), epoch) -
                                                   milestones_.begin());
    return schedulers_[i]->lr_at(i == 0 ? epoch : epoch - milestones_[i - 1], g);
}
void SequentialLR::save_own(NamedTensors& out) const {
    for (std::size_t i = 0; i < schedulers_.size(); ++i)
        for (auto& [name, t] : schedulers_[i]->state_dict())
            out.emplace_back(fmt::format("schedulers.{}.{}", i, name), t);
}
std::function<void()> SequentialLR::load_own(std::map<std::string, Tensor>& given, std::vector<std::string>& problems) {
    std::vector<std::function<void()>> commits;
    for (std::size_t i = 0; i < schedulers_.size(); ++i) {
        const std::string prefix = fmt::format("schedulers.{}.", i);
        std::map<std::string, Tensor> sub;
        for (auto it = given.lower_bound(prefix); it != given.end() && it->first.rfind(prefix, 0) == 0;)
            sub.emplace(it->first.substr(prefix.size()), it->second), it = given.erase(it);
        commits.push_back(prepare_load(*schedulers_[i], std::move(sub), problems, prefix));
    }
    return [commits] {
        for (const auto& c : commits) c();
    };
}

// ---- ReduceLROnPlateau --------------------------------------------------------------------------

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions o)
    : LRScheduler(optimizer), options(std::move(o)) {
    const ReduceLROnPlateauOptions& p = options;
    if (!(p.factor > 0 && p.factor < 1))
        throw ValueError(fmt::format("ReduceLROnPlateau: factor {} must be in (0, 1)", p.factor));
    if (!std::isfinite(p.threshold) || p.threshold < 0)
        throw ValueError(fmt::format("ReduceLROnPlateau: threshold {} must be finite and >= 0", p.threshold));
    if (!std::isfinite(p.eps) || p.eps < 0)
        throw ValueError(fmt::format("ReduceLROnPlateau: eps {} must be finite and >= 0", p.eps));
    const std::size_t groups = optimizer.param_groups().size();
    if (p.min_lrs.empty()) {
        min_lrs_.assign(groups, p.min_lr);
    } else if (p.min_lrs.size() != groups) {
        throw ValueError(
            fmt::format("ReduceLROnPlateau: {} min_lrs for {} parameter group(s)", p.min_lrs.size(), groups));
    } else {
        min_lrs_ = p.min_lrs;
    }
    min_lrs_.push_back(p.min_lr);  // checked with the others, then dropped
    for (double m : min_lrs_)
        if (!std::isfinite(m) || m < 0)
            throw ValueError(fmt::format("ReduceLROnPlateau: min_lr {} must be finite and >= 0", m));
    min_lrs_.pop_back();
    best_ = p.mode == PlateauMode::min ? INFINITY : -INFINITY;
}

bool ReduceLROnPlateau::is_better(double a) const {
    const double t = options.threshold;
    if (options.mode == PlateauMode::min)
        return options.threshold_mode == ThresholdMode::rel ? a < best_ * (1.0 - t) : a < best_ - t;
    return options.threshold_mode == ThresholdMode::rel ? a > best_ * (t + 1.0) : a > best_ + t;
}

void ReduceLROnPlateau::step(double metric) {
    if (is_better(metric)) {
        best_ = metric;
        num_bad_epochs_ = 0;
    } else {
        ++num_bad_epochs_;
    }
    if (cooldown_counter_ > 0) {  // bad epochs during a cooldown do not count
        --cooldown_counter_;
        num_bad_epochs_ = 0;
    }
    if (num_bad_epochs_ > options.patience) {
        for (std::size_t g = 0; g < min_lrs_.size(); ++g) {
            const double old_lr = optimizer_.group_lr(g);
            const double new_lr = std::max(old_lr * options.factor, min_lrs_[g]);
            if (old_lr - new_lr > options.eps) optimizer_.set_group_lr(g, new_lr);
        }
        cooldown_counter_ = options.cooldown;
        num_bad_epochs_ = 0;
    }
    ++last_epoch_;
    for (std::size_t g = 0; g < last_lr_.size(); ++g) last_lr_[g] = optimizer_.group_lr(g);
}

void ReduceLROnPlateau::save_own(NamedTensors& out) const {
    out.emplace_back("best", Tensor::scalar(best_, f64));
    out.emplace_back("num_bad_epochs", Tensor::scalar(static_cast<double>(num_bad_epochs_), f64));
    out.emplace_back("cooldown_counter", Tensor::scalar(static_cast<double>(cooldown_counter_), f64));
}
std::function<void()> ReduceLROnPlateau::load_own(std::map<std::string, Tensor>& given,
                                                   std::vector<std::string>& problems) {
    std::optional<double> best;
    if (auto it = given.find("best"); it == given.end()) {
        problems.push_back("missing 'best'");
    } else {
        if (!it->second.defined() || it->second.numel() != 1 || std::isnan(it->second.item()))
            problems.push_back("'best' is not one number");
        else best = it->second.item();
        given.erase(it);
    }
    const auto bad = take_count(given, "num_bad_epochs", problems, "");
    const auto cooldown = take_count(given, "cooldown_counter", problems, "");
    if (!best || !bad || !cooldown) return [] {};
    return [this, best = *best, bad = *bad, cooldown = *cooldown] {
        best_ = best;
        num_bad_epochs_ = bad;
        cooldown_counter_ = cooldown;
    };
}

}  // namespace tapegrad::nn
