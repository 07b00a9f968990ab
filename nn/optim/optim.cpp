// tapegrad::nn: optimizers and gradient clipping. Updates are plain loops over each parameter's
// contiguous value, gradient and state arrays (the same rule in float32 and float64).
#include "optim.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "../../autograd/ops.hpp"

namespace tapegrad::nn {

namespace {
template <class F>
decltype(auto) on_dtype(DType dt, F&& f) {
    if (dt == f64) return f(double{});
    return f(float{});
}
std::string param_label(const Tensor& p, std::size_t i) {
    return p.name().empty() ? fmt::format("parameter {}", i) : fmt::format("parameter {} ('{}')", i, p.name());
}
}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params, double lr, std::vector<std::string> slot_names)
    : Optimizer(std::vector<GroupSpec>{{std::move(params), lr, std::move(slot_names)}}) {}

Optimizer::Optimizer(std::vector<GroupSpec> groups) {
    if (groups.empty()) throw ValueError("optimizer: no parameter groups; give at least one");
    for (std::size_t g = 0; g < groups.size(); ++g) {
        const double lr = groups[g].lr;
        if (!(lr >= 0.0) || !std::isfinite(lr))
            throw ValueError(groups.size() == 1
                                 ? fmt::format("optimizer: learning rate {} is invalid", lr)
                                 : fmt::format("optimizer: group {}: learning rate {} is invalid", g, lr));
        for (Tensor& p : groups[g].params) {
            params_.push_back(p);
            group_of_.push_back(g);
        }
        groups_.push_back({std::move(groups[g].params), lr, std::nullopt});
        group_slots_.push_back(std::move(groups[g].slot_names));
    }
    slots_.resize(params_.size());
    param_steps_.assign(params_.size(), 0);
    // Parameter i is named by its index in params(); with groups, its group too.
    auto label = [&](std::size_t i) {
        return groups_.size() == 1 ? param_label(params_[i], i)
                                   : fmt::format("{} (in group {})", param_label(params_[i], i), group_of_[i]);
    };
    for (std::size_t i = 0; i < params_.size(); ++i) {
        if (!params_[i].defined())
            throw ValueError(groups_.size() == 1
                                 ? fmt::format("optimizer: parameter {} is undefined", i)
                                 : fmt::format("optimizer: parameter {} (in group {}) is undefined", i, group_of_[i]));
        if (!params_[i].is_leaf())
            throw ValueError(fmt::format("optimizer: {} is not a leaf (it was produced by an op); optimize leaves",
                                         label(i)));
        // A parameter given twice would be updated twice per step, with two sets of state.
        for (std::size_t j = 0; j < i; ++j)
            if (params_[j].same(params_[i]))
                throw ValueError(fmt::format("optimizer: {} is the same tensor as {}; give each parameter once",
                                             label(i), label(j)));
    }
}

namespace {
void check_lr(const std::string& who, double lr) {
    if (!(lr >= 0.0) || !std::isfinite(lr)) throw ValueError(fmt::format("{}: learning rate {} is invalid", who, lr));
}
}  // namespace

void Optimizer::set_lr(double lr) {
    check_lr(type_name(), lr);
    for (ParamGroup& g : groups_) g.lr = lr;
}

double Optimizer::group_lr(std::size_t g) const {
    if (g >= groups_.size())
        throw ValueError(fmt::format("{}: group_lr: group {} does not exist (there are {})", type_name(), g,
                                     groups_.size()));
    return groups_[g].lr;
}

void Optimizer::set_group_lr(std::size_t g, double lr) {
    if (g >= groups_.size())
        throw ValueError(fmt::format("{}: set_group_lr: group {} does not exist (there are {})", type_name(), g,
                                     groups_.size()));
    check_lr(fmt::format("{}: group {}", type_name(), g), lr);
    groups_[g].lr = lr;
}

void Optimizer::zero_grad() {
    for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::step() {
    ++steps_;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        Tensor& p = params_[i];
        if (!p.has_grad()) continue;
        ++param_steps_[i];
        bool fresh = false;
        const std::vector<std::string>& slot_names = group_slots_[group_of_[i]];
        if (slots_[i].empty() && !slot_names.empty()) {
            for (std::size_t k = 0; k < slot_names.size(); ++k) slots_[i].push_back(zeros(p.shape(), p.dtype()));
            fresh = true;
        }
        for (const Tensor& s : slots_[i])
            if (s.dtype() != p.dtype() || s.shape() != p.shape())
                throw UsageError(fmt::format("{}: {} is now {} {} but its optimizer state is {} {}; create the "
                                             "optimizer after converting the model",
                                             type_name(), param_label(p, i), dtype_name(p.dtype()),
                                             shape_str(p.shape()), dtype_name(s.dtype()), shape_str(s.shape())));
        on_dtype(p.dtype(), [&]<class T>(T) {
            std::vector<T*> sp;
            for (Tensor& s : slots_[i]) sp.push_back(s.mutable_value<T>().data());
            const T* g = p.grad_value<T>().data();
            update(i, p.mutable_value<T>().data(), g, sp, p.numel(), fresh);
        });
    }
}

namespace {
// Text as a float64 tensor of its bytes (numpy: bytes(a.astype('u1')).decode()), and back; a
// tensor that is not such text gives nullopt.
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
        if (!(c >= 32.0 && c <= 126.0) || c != std::floor(c)) return std::nullopt;  // printable ASCII
        s.push_back(static_cast<char>(c));
    }
    return s;
}
bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
}  // namespace

NamedTensors Optimizer::state_dict() const {
    NamedTensors out;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        const std::vector<std::string>& slot_names = group_slots_[group_of_[i]];
        for (std::size_t k = 0; k < slots_[i].size(); ++k)
            out.emplace_back(fmt::format("{}.{}", i, slot_names[k]), slots_[i][k].detach());
    }
    for (std::size_t i = 0; i < slots_.size(); ++i)
        if (!slots_[i].empty())
            out.emplace_back(fmt::format("{}.step", i), Tensor::scalar(static_cast<double>(param_steps_[i]), f64));
    out.emplace_back("step", Tensor::scalar(static_cast<double>(steps_), f64));
    out.emplace_back("type", encode_text(type_name()));
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        out.emplace_back(fmt::format("group.{}.lr", g), Tensor::scalar(groups_[g].lr, f64));
        if (groups_[g].initial_lr)
            out.emplace_back(fmt::format("group.{}.initial_lr", g), Tensor::scalar(*groups_[g].initial_lr, f64));
    }
    return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
    std::map<std::string, Tensor> given(state.begin(), state.end());
    std::vector<std::string> problems;
    std::vector<std::vector<Tensor>> slots(params_.size());
    std::vector<std::size_t> param_steps(params_.size(), 0);
    // The type first: another optimizer's state would otherwise show only as a list of slot names.
    if (auto it = given.find("type"); it != given.end()) {
        const std::optional<std::string> type = decode_text(it->second);
        if (!type) problems.push_back("'type' is not an optimizer's type name");
        else if (*type != type_name())
            problems.push_back(fmt::format("the state is of a {} optimizer, not of this {}", *type, type_name()));
        given.erase(it);
    }
    // Read now: erasing entries from `given` below invalidates iterators into it.
    std::size_t steps = 0;
    // A count read back must be a whole number >= 0: casting NaN or a negative to size_t is undefined.
    auto is_count = [](double v) { return std::isfinite(v) && v >= 0 && v == std::floor(v) && v < 1e18; };
    if (auto it = given.find("step"); it == given.end() || it->second.numel() != 1)
        problems.push_back("missing 'step'");
    else if (!is_count(it->second.item()))
        problems.push_back(fmt::format("'step' is {}, not a step count", it->second.item()));
    else steps = static_cast<std::size_t>(it->second.item());
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const std::vector<std::string>& slot_names = group_slots_[group_of_[i]];
        std::size_t found = 0;
        for (const auto& slot : slot_names) found += given.count(fmt::format("{}.{}", i, slot));
        if (found == 0) continue;  // this parameter had no state yet
        const std::string step_name = fmt::format("{}.step", i);
        auto st = given.find(step_name);
        if (st == given.end() || st->second.numel() != 1) {
            problems.push_back(fmt::format("missing '{}'", step_name));
        } else if (!is_count(st->second.item())) {
            problems.push_back(fmt::format("'{}' is {}, not a step count", step_name, st->second.item()));
            given.erase(st);
        } else {
            param_steps[i] = static_cast<std::size_t>(st->second.item());
            given.erase(st);
        }
        for (const auto& slot : slot_names) {
            const std::string name = fmt::format("{}.{}", i, slot);
            auto it = given.find(name);
            if (it == given.end()) {
                problems.push_back(fmt::format("missing '{}'", name));
                continue;
            }
            const Tensor& t = it->second;
            if (t.shape() != params_[i].shape() || t.dtype() != params_[i].dtype())
                problems.push_back(fmt::format("'{}' is {} {} but {} is {} {}", name, dtype_name(t.dtype()),
                                               shape_str(t.shape()), param_label(params_[i], i),
                                               dtype_name(params_[i].dtype()), shape_str(params_[i].shape())));
            else slots[i].push_back(t.detach());
            given.erase(it);
        }
    }
    given.erase("step");
    // The groups' learning rates, when the state has them (a state saved before groups existed
    // has none, and leaves the learning rates as they are).
    std::vector<ParamGroup> groups = groups_;
    const bool has_groups =
        std::any_of(given.begin(), given.end(), [](const auto& e) { return starts_with(e.first, "group."); });
    if (has_groups) {
        std::size_t saved_groups = 0;
        while (given.count(fmt::format("group.{}.lr", saved_groups))) ++saved_groups;
        if (saved_groups != groups_.size())
            problems.push_back(fmt::format("the state has {} parameter group(s), this optimizer {}", saved_groups,
                                           groups_.size()));
        auto read_lr = [&](const std::string& name) -> std::optional<double> {
            auto it = given.find(name);
            if (it == given.end()) return std::nullopt;
            const Tensor t = it->second;
            given.erase(it);
            if (!t.defined() || t.numel() != 1 || !std::isfinite(t.item()) || t.item() < 0.0) {
                problems.push_back(t.defined() && t.numel() == 1
                                       ? fmt::format("'{}' is {}, not a learning rate", name, t.item())
                                       : fmt::format("'{}' is not one number", name));
                return std::nullopt;
            }
            return t.item();
        };
        for (std::size_t g = 0; g < groups.size(); ++g) {
            const std::string name = fmt::format("group.{}.lr", g);
            const bool present = given.count(name) > 0;
            if (const auto lr = read_lr(name)) groups[g].lr = *lr;
            else if (!present && saved_groups >= groups_.size()) problems.push_back(fmt::format("missing '{}'", name));
            groups[g].initial_lr = read_lr(fmt::format("group.{}.initial_lr", g));
        }
    }
    for (const auto& [name, t] : given) problems.push_back(fmt::format("unexpected '{}'", name));
    if (!problems.empty())
        throw ValueError(fmt::format("{}: load_state_dict: {}", type_name(), fmt::join(problems, "; ")));
    for (std::size_t i = 0; i < slots.size(); ++i)
        if (!slots[i].empty() && slots[i].size() != group_slots_[group_of_[i]].size()) slots[i].clear();
    slots_ = std::move(slots);
    param_steps_ = std::move(param_steps);
    steps_ = steps;
    groups_ = std::move(groups);
}

// ---- groups -------------------------------------------------------------------------------------
namespace {
// Who an options error is about: "SGD", or "SGD: group 1" when there are several groups.
std::string who(const char* type, std::size_t g, std::size_t n) {
    return n == 1 ? std::string(type) : fmt::format("{}: group {}", type, g);
}
template <class V>
void take(std::optional<V> given, V& into) {
    if (given) into = *given;
}
// The groups as the base class keeps them, each group's options resolved against the defaults
// (every option a group leaves empty) and checked by check(options, who) before anything is built.
template <class Group, class Options, class Resolve, class Check, class Slots>
std::vector<Optimizer::GroupSpec> group_specs(const char* type, const std::vector<Group>& groups,
                                              const Options& defaults, Resolve resolve, Check check, Slots slots) {
    if (groups.empty()) throw ValueError(fmt::format("{}: no parameter groups; give at least one", type));
    std::vector<Optimizer::GroupSpec> specs;
    for (std::size_t g = 0; g < groups.size(); ++g) {
        Options o = resolve(groups[g], defaults);
        const std::string w = who(type, g, groups.size());
        if (!(o.lr >= 0.0) || !std::isfinite(o.lr))
            throw ValueError(fmt::format("{}: learning rate {} is invalid", w, o.lr));
        check(o, w);
        specs.push_back({groups[g].params, o.lr, slots(o)});
    }
    return specs;
}
// Each group's options, for the derived class (built after the base class took group_specs).
template <class Group, class Options, class Resolve>
std::vector<Options> resolve_all(const std::vector<Group>& groups, const Options& defaults, Resolve resolve) {
    std::vector<Options> out;
    for (const Group& g : groups) out.push_back(resolve(g, defaults));
    return out;
}
}  // namespace

// ---- SGD ----------------------------------------------------------------------------------------
namespace {
SGDOptions resolve_sgd(const SGDGroup& g, const SGDOptions& d) {
    SGDOptions o = d;
    take(g.lr, o.lr);
    take(g.momentum, o.momentum);
    take(g.dampening, o.dampening);
    take(g.weight_decay, o.weight_decay);
    take(g.nesterov, o.nesterov);
    return o;
}
void check_sgd(const SGDOptions& o, const std::string& w) {
    if (!(o.momentum >= 0) || !(o.weight_decay >= 0) || !std::isfinite(o.momentum) || !std::isfinite(o.weight_decay))
        throw ValueError(fmt::format("{}: momentum {} and weight_decay {} must be finite and >= 0", w, o.momentum,
                                     o.weight_decay));
    if (!(o.dampening >= 0 && o.dampening <= 1))
        throw ValueError(fmt::format("{}: dampening {} must be in [0, 1]", w, o.dampening));
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
        throw ValueError(fmt::format("{}: nesterov needs momentum > 0 and dampening 0", w));
}
std::vector<std::string> sgd_slots(const SGDOptions& o) {
    return o.momentum != 0.0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
}
}  // namespace
SGD::SGD(std::vector<Tensor> params, SGDOptions o) : SGD(std::vector<SGDGroup>{{.params = std::move(params)}}, o) {}
SGD::SGD(std::vector<SGDGroup> groups, SGDOptions d)
    : Optimizer(group_specs("SGD", groups, d, resolve_sgd, check_sgd, sgd_slots)),
      options(d),
      group_options_(resolve_all(groups, d, resolve_sgd)) {}
template <class T>
void SGD::run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh) {
    const SGDOptions& o = group_options_[group_of(i)];
    const T lr = static_cast<T>(lr_of(i)), wd = static_cast<T>(o.weight_decay);
    const T mu = static_cast<T>(o.momentum), damp = static_cast<T>(o.dampening);
    for (std::size_t j = 0; j < n; ++j) {
        T d = g[j] + wd * p[j];
        if (mu != T(0)) {
            T& b = s[0][j];
            b = fresh ? d : mu * b + (T(1) - damp) * d;
            d = o.nesterov ? d + mu * b : b;
        }
        p[j] -= lr * d;
    }
}
void SGD::update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool f) {
    run(i, p, g, s, n, f);
}
void SGD::update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool f) {
    run(i, p, g, s, n, f);
}

// ---- Adagrad ------------------------------------------------------------------------------------
namespace {
AdagradOptions resolve_adagrad(const AdagradGroup& g, const AdagradOptions& d) {
    AdagradOptions o = d;
    take(g.lr, o.lr);
    take(g.lr_decay, o.lr_decay);
    take(g.weight_decay, o.weight_decay);
    take(g.initial_accumulator_value, o.initial_accumulator_value);
    take(g.eps, o.eps);
    return o;
}
void check_adagrad(const AdagradOptions& o, const std::string& w) {
    const auto fin = [](double v) { return std::isfinite(v); };
    if (!(o.lr_decay >= 0) || !(o.weight_decay >= 0) || !(o.initial_accumulator_value >= 0) || !(o.eps > 0) ||
        !fin(o.lr_decay) || !fin(o.weight_decay) || !fin(o.initial_accumulator_value) || !fin(o.eps))
        throw ValueError(fmt::format("{}: lr_decay, weight_decay and initial_accumulator_value must be finite and >= "
                                     "0, and eps > 0 and finite (got {}, {}, {}, {})",
                                     w, o.lr_decay, o.weight_decay, o.initial_accumulator_value, o.eps));
}
std::vector<std::string> adagrad_slots(const AdagradOptions&) { return {"sum"}; }
}  // namespace
Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions o)
    : Adagrad(std::vector<AdagradGroup>{{.params = std::move(params)}}, o) {}
Adagrad::Adagrad(std::vector<AdagradGroup> groups, AdagradOptions d)
    : Optimizer(group_specs("Adagrad", groups, d, resolve_adagrad, check_adagrad, adagrad_slots)),
      options(d),
      group_options_(resolve_all(groups, d, resolve_adagrad)) {}
template <class T>
void Adagrad::run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh) {
    const AdagradOptions& o = group_options_[group_of(i)];
    const T clr = static_cast<T>(lr_of(i) / (1.0 + static_cast<double>(t(i) - 1) * o.lr_decay));
    const T wd = static_cast<T>(o.weight_decay), eps = static_cast<T>(o.eps);
    T* sum = s[0];
    if (fresh)
        for (std::size_t j = 0; j < n; ++j) sum[j] = static_cast<T>(o.initial_accumulator_value);
    for (std::size_t j = 0; j < n; ++j) {
        const T d = g[j] + wd * p[j];
        sum[j] += d * d;
        p[j] -= clr * d / (std::sqrt(sum[j]) + eps);
    }
}
void Adagrad::update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool f) {
    run(i, p, g, s, n, f);
}
void Adagrad::update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool f) {
    run(i, p, g, s, n, f);
}

// ---- RMSprop ------------------------------------------------------------------------------------
namespace {
RMSpropOptions resolve_rmsprop(const RMSpropGroup& g, const RMSpropOptions& d) {
    RMSpropOptions o = d;
    take(g.lr, o.lr);
    take(g.alpha, o.alpha);
    take(g.eps, o.eps);
    take(g.weight_decay, o.weight_decay);
    take(g.momentum, o.momentum);
    take(g.centered, o.centered);
    return o;
}
void check_rmsprop(const RMSpropOptions& o, const std::string& w) {
    const auto fin = [](double v) { return std::isfinite(v); };
    if (!(o.alpha >= 0 && o.alpha <= 1) || !(o.eps > 0) || !(o.weight_decay >= 0) || !(o.momentum >= 0) ||
        !fin(o.eps) || !fin(o.weight_decay) || !fin(o.momentum))
        throw ValueError(fmt::format("{}: need 0 <= alpha <= 1, and eps > 0, weight_decay >= 0, momentum >= 0, all "
                                     "finite (got {}, {}, {}, {})",
                                     w, o.alpha, o.eps, o.weight_decay, o.momentum));
}
std::vector<std::string> rmsprop_slots(const RMSpropOptions& o) {
    std::vector<std::string> s{"square_avg"};
    if (o.momentum > 0) s.push_back("momentum_buffer");
    if (o.centered) s.push_back("grad_avg");
    return s;
}
}  // namespace
RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions o)
    : RMSprop(std::vector<RMSpropGroup>{{.params = std::move(params)}}, o) {}
RMSprop::RMSprop(std::vector<RMSpropGroup> groups, RMSpropOptions d)
    : Optimizer(group_specs("RMSprop", groups, d, resolve_rmsprop, check_rmsprop, rmsprop_slots)),
      options(d),
      group_options_(resolve_all(groups, d, resolve_rmsprop)) {}
template <class T>
void RMSprop::run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool) {
    const RMSpropOptions& o = group_options_[group_of(i)];
    const T lr = static_cast<T>(lr_of(i)), a = static_cast<T>(o.alpha), eps = static_cast<T>(o.eps);
    const T wd = static_cast<T>(o.weight_decay), mu = static_cast<T>(o.momentum);
    T* sq = s[0];
    T* buf = o.momentum > 0 ? s[1] : nullptr;
    T* gavg = o.centered ? s.back() : nullptr;
    for (std::size_t j = 0; j < n; ++j) {
        const T d = g[j] + wd * p[j];
        sq[j] = a * sq[j] + (T(1) - a) * d * d;
        T v = sq[j];
        if (gavg) {
            gavg[j] = a * gavg[j] + (T(1) - a) * d;
            v -= gavg[j] * gavg[j];
        }
        const T step = d / (std::sqrt(v) + eps);
        if (buf) {
            buf[j] = mu * buf[j] + step;
            p[j] -= lr * buf[j];
        } else {
            p[j] -= lr * step;
        }
    }
}
void RMSprop::update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool f) {
    run(i, p, g, s, n, f);
}
void RMSprop::update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool f) {
    run(i, p, g, s, n, f);
}

// ---- Adam / AdamW -------------------------------------------------------------------------------
namespace {
AdamOptions resolve_adam(const AdamGroup& g, const AdamOptions& d) {
    AdamOptions o = d;
    take(g.lr, o.lr);
    take(g.beta1, o.beta1);
    take(g.beta2, o.beta2);
    take(g.eps, o.eps);
    take(g.weight_decay, o.weight_decay);
    take(g.amsgrad, o.amsgrad);
    return o;
}
void check_adam(const AdamOptions& o, const std::string& w) {
    if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1) || !(o.eps > 0) || !(o.weight_decay >= 0) ||
        !std::isfinite(o.eps) || !std::isfinite(o.weight_decay))
        throw ValueError(fmt::format("{}: need 0 <= beta1, beta2 < 1, and eps > 0, weight_decay >= 0, both finite "
                                     "(got {}, {}, {}, {})",
                                     w, o.beta1, o.beta2, o.eps, o.weight_decay));
}
std::vector<std::string> adam_slots(const AdamOptions& o) {
    std::vector<std::string> s{"exp_avg", "exp_avg_sq"};
    if (o.amsgrad) s.push_back("max_exp_avg_sq");
    return s;
}
AdamOptions adamw_defaults(const AdamWOptions& o) { return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad}; }
}  // namespace
Adam::Adam(std::vector<Tensor> params, AdamOptions o) : Adam(std::move(params), o, false) {}
Adam::Adam(std::vector<AdamGroup> groups, AdamOptions d) : Adam(std::move(groups), d, false) {}
Adam::Adam(std::vector<Tensor> params, AdamOptions o, bool decoupled)
    : Adam(std::vector<AdamGroup>{{.params = std::move(params)}}, o, decoupled) {}
Adam::Adam(std::vector<AdamGroup> groups, AdamOptions d, bool decoupled)
    : Optimizer(group_specs(decoupled ? "AdamW" : "Adam", groups, d, resolve_adam, check_adam, adam_slots)),
      options(d),
      decoupled_(decoupled),
      group_options_(resolve_all(groups, d, resolve_adam)) {}
AdamW::AdamW(std::vector<Tensor> params, AdamWOptions o) : Adam(std::move(params), adamw_defaults(o), true) {}
AdamW::AdamW(std::vector<AdamGroup> groups, AdamWOptions d) : Adam(std::move(groups), adamw_defaults(d), true) {}

template <class T>
void Adam::run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool) {
    const AdamOptions& o = group_options_[group_of(i)];
    const double step = static_cast<double>(t(i));
    const T lr = static_cast<T>(lr_of(i)), b1 = static_cast<T>(o.beta1), b2 = static_cast<T>(o.beta2);
    const T eps = static_cast<T>(o.eps), wd = static_cast<T>(o.weight_decay);
    const T bc1 = static_cast<T>(1.0 - std::pow(o.beta1, step));
    const T bc2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(o.beta2, step)));
    T* m = s[0];
    T* v = s[1];
    T* vmax = o.amsgrad ? s[2] : nullptr;
    for (std::size_t j = 0; j < n; ++j) {
        T d = g[j];
        if (decoupled_) p[j] *= T(1) - lr * wd;
        else d += wd * p[j];
        m[j] = b1 * m[j] + (T(1) - b1) * d;
        v[j] = b2 * v[j] + (T(1) - b2) * d * d;
        T vv = v[j];
        if (vmax) vv = vmax[j] = std::max(vmax[j], v[j]);
        // PyTorch's form: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
        p[j] -= lr / bc1 * m[j] / (std::sqrt(vv) / bc2_sqrt + eps);
    }
}
void Adam::update(std::size_t i, float* p, const float* g, std::vector<float*>& s, std::size_t n, bool f) {
    run(i, p, g, s, n, f);
}
void Adam::update(std::size_t i, double* p, const double* g, std::vector<double*>& s, std::size_t n, bool f) {
    run(i, p, g, s, n, f);
}

// ---- clipping -----------------------------------------------------------------------------------
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite) {
    if (!(max_norm >= 0)) throw ValueError(fmt::format("clip_grad_norm: max_norm {} must be >= 0", max_norm));
    double sq = 0;
    for (const Tensor& p : params) {
        const Array* g = p.grad_array();
        if (!g) continue;
        std::visit([&](const auto& a) {
            for (std::size_t j = 0; j < a.size(); ++j) sq += static_cast<double>(a.data()[j]) * a.data()[j];
        }, *g);
    }
    const double norm = std::sqrt(sq);
    if (!std::isfinite(norm)) {
        if (!error_if_nonfinite) return norm;
        for (std::size_t i = 0; i < params.size(); ++i) {
            const Array* g = params[i].grad_array();
            if (!g) continue;
            std::string where;
            std::visit([&](const auto& a) {
                for (std::size_t j = 0; j < a.size() && where.empty(); ++j)
                    if (!std::isfinite(a.data()[j])) where = fmt::format("element {} is {}", j, a.data()[j]);
            }, *g);
            if (!where.empty())
                throw ValueError(fmt::format("clip_grad_norm: the total gradient norm is {}: {} of shape {} has a "
                                             "non-finite gradient ({})",
                                             norm, param_label(params[i], i), shape_str(params[i].shape()), where));
        }
        throw ValueError(fmt::format("clip_grad_norm: the total gradient norm is {} (overflow of finite gradients)",
                                     norm));
    }
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
        for (const Tensor& p : params) {
            Tensor q = p;
            Array* g = q.mutable_grad_array();
            if (!g) continue;
            std::visit([&](auto& a) {
                using T = typename std::decay_t<decltype(a)>::value_type;
                for (std::size_t j = 0; j < a.size(); ++j) a.data()[j] *= static_cast<T>(coef);
            }, *g);
        }
    return norm;
}

void clip_grad_value(const std::vector<Tensor>& params, double clip_value) {
    if (!(clip_value >= 0)) throw ValueError(fmt::format("clip_grad_value: clip_value {} must be >= 0", clip_value));
    for (const Tensor& p : params) {
        Tensor q = p;
        Array* g = q.mutable_grad_array();
        if (!g) continue;
        std::visit([&](auto& a) {
            using T = typename std::decay_t<decltype(a)>::value_type;
            const T c = static_cast<T>(clip_value);
            // Compared this way round so a NaN stays NaN (as PyTorch's clamp) instead of becoming -c.
            for (std::size_t j = 0; j < a.size(); ++j) {
                const T v = a.data()[j];
                a.data()[j] = v < -c ? -c : v > c ? c : v;
            }
        }, *g);
    }
}

}  // namespace tapegrad::nn
