// tapegrad::nn: optimizers and gradient clipping. Updates are plain loops over each parameter's
// contiguous value, gradient and state arrays (the same rule in float32 and float64).
#include "optim.hpp"

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "../autograd/ops.hpp"

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
    : params_(std::move(params)), lr_(lr), slot_names_(std::move(slot_names)), slots_(params_.size()), param_steps_(params_.size(), 0) {
    if (!(lr >= 0.0) || !std::isfinite(lr)) throw ValueError(fmt::format("optimizer: learning rate {} is invalid", lr));
    for (std::size_t i = 0; i < params_.size(); ++i) {
        if (!params_[i].defined()) throw ValueError(fmt::format("optimizer: parameter {} is undefined", i));
        if (!params_[i].is_leaf())
            throw ValueError(fmt::format("optimizer: {} is not a leaf (it was produced by an op); optimize leaves",
                                         param_label(params_[i], i)));
        // A parameter given twice would be updated twice per step, with two sets of state.
        for (std::size_t j = 0; j < i; ++j)
            if (params_[j].same(params_[i]))
                throw ValueError(fmt::format("optimizer: {} is the same tensor as {}; give each parameter once",
                                             param_label(params_[i], i), param_label(params_[j], j)));
    }
}

void Optimizer::set_lr(double lr) {
    if (!(lr >= 0.0) || !std::isfinite(lr))
        throw ValueError(fmt::format("{}: learning rate {} is invalid", type_name(), lr));
    lr_ = lr;
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
        if (slots_[i].empty() && !slot_names_.empty()) {
            for (std::size_t k = 0; k < slot_names_.size(); ++k) slots_[i].push_back(zeros(p.shape(), p.dtype()));
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

NamedTensors Optimizer::state_dict() const {
    NamedTensors out;
    for (std::size_t i = 0; i < slots_.size(); ++i)
        for (std::size_t k = 0; k < slots_[i].size(); ++k)
            out.emplace_back(fmt::format("{}.{}", i, slot_names_[k]), slots_[i][k].detach());
    for (std::size_t i = 0; i < slots_.size(); ++i)
        if (!slots_[i].empty())
            out.emplace_back(fmt::format("{}.step", i), Tensor::scalar(static_cast<double>(param_steps_[i]), f64));
    out.emplace_back("step", Tensor::scalar(static_cast<double>(steps_), f64));
    return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
    std::map<std::string, Tensor> given(state.begin(), state.end());
    std::vector<std::string> problems;
    std::vector<std::vector<Tensor>> slots(params_.size());
    std::vector<std::size_t> param_steps(params_.size(), 0);
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
        std::size_t found = 0;
        for (const auto& slot : slot_names_) found += given.count(fmt::format("{}.{}", i, slot));
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
        for (const auto& slot : slot_names_) {
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
    for (const auto& [name, t] : given) problems.push_back(fmt::format("unexpected '{}'", name));
    if (!problems.empty())
        throw ValueError(fmt::format("{}: load_state_dict: {}", type_name(), fmt::join(problems, "; ")));
    for (auto& s : slots)
        if (!s.empty() && s.size() != slot_names_.size()) s.clear();
    slots_ = std::move(slots);
    param_steps_ = std::move(param_steps);
    steps_ = steps;
}

// ---- SGD ----------------------------------------------------------------------------------------
SGD::SGD(std::vector<Tensor> params, SGDOptions o)
    : Optimizer(std::move(params), o.lr, o.momentum != 0.0 ? std::vector<std::string>{"momentum_buffer"}
                                                            : std::vector<std::string>{}),
      options(o) {
    if (o.momentum < 0 || o.weight_decay < 0)
        throw ValueError(fmt::format("SGD: momentum {} and weight_decay {} must be >= 0", o.momentum, o.weight_decay));
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
        throw ValueError("SGD: nesterov needs momentum > 0 and dampening 0");
}
template <class T>
void SGD::run(std::size_t, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh) {
    const T lr = static_cast<T>(this->lr()), wd = static_cast<T>(options.weight_decay);
    const T mu = static_cast<T>(options.momentum), damp = static_cast<T>(options.dampening);
    for (std::size_t j = 0; j < n; ++j) {
        T d = g[j] + wd * p[j];
        if (mu != T(0)) {
            T& b = s[0][j];
            b = fresh ? d : mu * b + (T(1) - damp) * d;
            d = options.nesterov ? d + mu * b : b;
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
Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions o)
    : Optimizer(std::move(params), o.lr, {"sum"}), options(o) {
    if (o.lr_decay < 0 || o.weight_decay < 0 || o.initial_accumulator_value < 0 || !(o.eps > 0))
        throw ValueError("Adagrad: lr_decay, weight_decay and initial_accumulator_value must be >= 0, eps > 0");
}
template <class T>
void Adagrad::run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool fresh) {
    const T clr = static_cast<T>(lr() / (1.0 + static_cast<double>(t(i) - 1) * options.lr_decay));
    const T wd = static_cast<T>(options.weight_decay), eps = static_cast<T>(options.eps);
    T* sum = s[0];
    if (fresh)
        for (std::size_t j = 0; j < n; ++j) sum[j] = static_cast<T>(options.initial_accumulator_value);
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
std::vector<std::string> rmsprop_slots(const RMSpropOptions& o) {
    std::vector<std::string> s{"square_avg"};
    if (o.momentum > 0) s.push_back("momentum_buffer");
    if (o.centered) s.push_back("grad_avg");
    return s;
}
}  // namespace
RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions o)
    : Optimizer(std::move(params), o.lr, rmsprop_slots(o)), options(o) {
    if (o.alpha < 0 || o.alpha > 1 || !(o.eps > 0) || o.weight_decay < 0 || o.momentum < 0)
        throw ValueError("RMSprop: need 0 <= alpha <= 1, eps > 0, weight_decay >= 0, momentum >= 0");
}
template <class T>
void RMSprop::run(std::size_t, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool) {
    const T lr = static_cast<T>(this->lr()), a = static_cast<T>(options.alpha), eps = static_cast<T>(options.eps);
    const T wd = static_cast<T>(options.weight_decay), mu = static_cast<T>(options.momentum);
    T* sq = s[0];
    T* buf = options.momentum > 0 ? s[1] : nullptr;
    T* gavg = options.centered ? s.back() : nullptr;
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
std::vector<std::string> adam_slots(const AdamOptions& o) {
    std::vector<std::string> s{"exp_avg", "exp_avg_sq"};
    if (o.amsgrad) s.push_back("max_exp_avg_sq");
    return s;
}
}  // namespace
Adam::Adam(std::vector<Tensor> params, AdamOptions o) : Adam(std::move(params), o, false) {}
Adam::Adam(std::vector<Tensor> params, AdamOptions o, bool decoupled)
    : Optimizer(std::move(params), o.lr, adam_slots(o)), options(o), decoupled_(decoupled) {
    if (o.beta1 < 0 || o.beta1 >= 1 || o.beta2 < 0 || o.beta2 >= 1 || !(o.eps > 0) || o.weight_decay < 0)
        throw ValueError(fmt::format("{}: need 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0 (got {}, {}, {}, {})",
                                     decoupled ? "AdamW" : "Adam", o.beta1, o.beta2, o.eps, o.weight_decay));
}
AdamW::AdamW(std::vector<Tensor> params, AdamWOptions o)
    : Adam(std::move(params), {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad}, true) {}

template <class T>
void Adam::run(std::size_t i, T* p, const T* g, std::vector<T*>& s, std::size_t n, bool) {
    const double step = static_cast<double>(t(i));
    const T lr = static_cast<T>(this->lr()), b1 = static_cast<T>(options.beta1), b2 = static_cast<T>(options.beta2);
    const T eps = static_cast<T>(options.eps), wd = static_cast<T>(options.weight_decay);
    const T bc1 = static_cast<T>(1.0 - std::pow(options.beta1, step));
    const T bc2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(options.beta2, step)));
    T* m = s[0];
    T* v = s[1];
    T* vmax = options.amsgrad ? s[2] : nullptr;
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
