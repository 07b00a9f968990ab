// tapegrad: gradcheck (see gradcheck.hpp). The analytic side runs f once on its own tape and
// backpropagates one output direction at a time with retain_graph; the numeric side perturbs one
// input element (or one input along a random direction) at a time and runs f under NoGrad.
#include "gradcheck.hpp"

#include <cmath>
#include <ostream>

#include <xtensor/xmath.hpp>

#include "detail/op.hpp"
#include "random.hpp"
#include "tape.hpp"

namespace tapegrad {

namespace {

using Vals = std::vector<xt::xarray<double>>;

Shape unravel(std::size_t flat, const Shape& shape) {
    Shape idx(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        idx[d] = shape[d] == 0 ? 0 : flat % shape[d];
        flat = shape[d] == 0 ? 0 : flat / shape[d];
    }
    return idx;
}

struct Checker {
    const std::function<Tensor()>& f;
    const GradcheckOptions& opt;
    std::vector<std::string> names;
    Vals base;
    GradcheckResult res;
    double worst_excess = -1.0;  // largest err / tol among failures, to report the worst one

    xt::xarray<double> eval() {
        NoGrad guard;
        return output_value(f());
    }
    static xt::xarray<double> output_value(const Tensor& y) {
        if (!y.defined()) throw ValueError("gradcheck: the function returned an undefined tensor");
        if (y.dtype() != f64)
            throw ValueError("gradcheck: the function returned a float32 tensor; keep every op in float64 (a "
                             "float32 result loses the precision finite differences need)");
        return y.value<double>();
    }

    // Compare one analytic/numeric pair; remember the worst violation.
    void compare(double a, double n, std::size_t input, const Shape& element, const Shape& out_element,
                 std::size_t direction = 0) {
        ++res.compared;
        const double err = std::abs(a - n);
        const double tol = opt.atol + opt.rtol * std::abs(n);
        if (std::isfinite(err)) res.worst_error = std::max(res.worst_error, err);
        else res.worst_error = INFINITY;
        if (err <= tol) return;  // NaN fails here too
        const double excess = std::isfinite(err) ? err / tol : INFINITY;
        if (res.ok || excess > worst_excess) {
            res.ok = false;
            worst_excess = excess;
            res.input_index = input;
            res.input = names[input];
            res.element = element;
            res.output_element = out_element;
            res.direction = direction;
            res.analytic = a;
            res.numeric = n;
        }
    }

    std::string describe_pass() const {
        return fmt::format("gradcheck passed: {} {} compared over {} input(s), worst |analytic - numeric| {:.3e} "
                           "(atol {:g}, rtol {:g}, eps {:g})",
                           res.compared,
                           opt.mode == GradcheckOptions::Mode::full ? "Jacobian entries" : "directional derivatives",
                           base.size(), res.worst_error, opt.atol, opt.rtol, opt.eps);
    }
    std::string describe_fail() const {
        std::string where =
            opt.mode == GradcheckOptions::Mode::full
                ? fmt::format("element {} (output element {})", shape_str(res.element), shape_str(res.output_element))
                : fmt::format("random direction {}", res.direction);
        return fmt::format("gradcheck failed: input '{}' (input {}, shape {}) {}: analytic {:.10g} vs numeric {:.10g}, "
                           "|diff| {:.3e} > atol {:g} + rtol {:g} * |numeric|; worst |diff| over {} compared: {:.3e}",
                           res.input, res.input_index, shape_str(detail::to_shape(base[res.input_index].shape())),
                           where, res.analytic, res.numeric, std::abs(res.analytic - res.numeric), opt.atol, opt.rtol,
                           res.compared, res.worst_error);
    }
};

}  // namespace

std::ostream& operator<<(std::ostream& os, const GradcheckResult& r) { return os << r.message; }

namespace {
void check_options(const GradcheckOptions& opt, std::size_t n) {
    if (n == 0) throw ValueError("gradcheck: no inputs to check");
    if (!(opt.eps > 0) || !(opt.atol >= 0) || !(opt.rtol >= 0) || opt.directions < 1)
        throw ValueError(fmt::format("gradcheck: bad options eps {} atol {} rtol {} directions {} (need eps > 0, "
                                     "atol, rtol >= 0, directions >= 1)",
                                     opt.eps, opt.atol, opt.rtol, opt.directions));
    if (!opt.names.empty() && opt.names.size() != n)
        throw ValueError(fmt::format("gradcheck: {} names given for {} inputs", opt.names.size(), n));
}

void check_f64(const Tensor& t, std::size_t i, const GradcheckOptions& opt) {
    detail::check_defined("gradcheck", t);
    if (t.dtype() != f64)
        throw ValueError(fmt::format(
            "gradcheck: input {} is float32; gradcheck needs float64. A central difference with eps {:g} "
            "divides a change near eps by 2 eps, and float32's ~7 significant digits leave that quotient "
            "mostly rounding error. Convert with .to(tapegrad::f64) (modules: module.to(tapegrad::f64))",
            i, opt.eps));
}

// The core: tensors are leaves that f reads; each is perturbed in place (without bumping its
// version, and restored exactly before the next backward) while f runs under NoGrad.
GradcheckResult check_in_place(const std::function<Tensor()>& f, const std::vector<Tensor>& tensors,
                               const GradcheckOptions& opt) {
    Checker ck{f, opt, {}, {}, {}};
    const std::size_t n_in = tensors.size();
    std::vector<double*> data(n_in);
    for (std::size_t i = 0; i < n_in; ++i) {
        ck.base.push_back(tensors[i].value<double>());
        ck.names.push_back(!opt.names.empty()            ? opt.names[i]
                           : !tensors[i].name().empty() ? tensors[i].name()
                                                        : fmt::format("input {}", i));
        data[i] = detail::get<double>(tensors[i].node()->value).data();
    }

    // Analytic side: one recorded forward, backward per output direction.
    Tape tape;
    const Tensor y = f();
    const xt::xarray<double> y0 = Checker::output_value(y);
    const Shape out_shape = detail::to_shape(y0.shape());
    const std::size_t out_n = y0.size();
    // The gradient of every input for the output weighting w.
    auto analytic = [&](const xt::xarray<double>& w) {
        std::vector<xt::xarray<double>> g(n_in);
        for (const Tensor& t : tensors) Tensor(t).zero_grad();
        if (y.requires_grad()) tape.backward(y, Tensor(w), {.retain_graph = true});
        for (std::size_t i = 0; i < n_in; ++i)
            g[i] = tensors[i].has_grad() ? tensors[i].grad_value<double>()
                                         : xt::xarray<double>(xt::zeros<double>(ck.base[i].shape()));
        return g;
    };

    if (opt.mode == GradcheckOptions::Mode::full) {
        // jac[i] is [out_n, in_n_i], row j = d y_j / d input_i
        std::vector<xt::xarray<double>> jac(n_in);
        for (std::size_t i = 0; i < n_in; ++i) jac[i] = xt::zeros<double>({out_n, ck.base[i].size()});
        for (std::size_t j = 0; j < out_n; ++j) {
            xt::xarray<double> w = xt::zeros<double>(y0.shape());
            w.data()[j] = 1.0;
            auto g = analytic(w);
            for (std::size_t i = 0; i < n_in; ++i)
                for (std::size_t k = 0; k < g[i].size(); ++k) jac[i](j, k) = g[i].data()[k];
        }
        for (std::size_t i = 0; i < n_in; ++i) {
            const Shape in_shape = detail::to_shape(ck.base[i].shape());
            for (std::size_t k = 0; k < ck.base[i].size(); ++k) {
                const double x0 = ck.base[i].data()[k];
                data[i][k] = x0 + opt.eps;
                const xt::xarray<double> fp = ck.eval();
                data[i][k] = x0 - opt.eps;
                const xt::xarray<double> fm = ck.eval();
                data[i][k] = x0;
                for (std::size_t j = 0; j < out_n; ++j) {
                    const double num = (fp.data()[j] - fm.data()[j]) / (2 * opt.eps);
                    ck.compare(jac[i](j, k), num, i, unravel(k, in_shape), unravel(j, out_shape));
                }
            }
        }
    } else {
        Generator gen(opt.seed);
        auto random_unit = [&](const auto& shape) {
            xt::xarray<double> v = xt::xarray<double>::from_shape(shape);
            double norm2 = 0;
            for (auto& e : v) {
                e = gen.normal();
                norm2 += e * e;
            }
            if (norm2 > 0) v /= std::sqrt(norm2);
            return v;
        };
        auto set = [&](std::size_t i, const xt::xarray<double>& v, double scale) {
            for (std::size_t k = 0; k < v.size(); ++k) data[i][k] = ck.base[i].data()[k] + scale * v.data()[k];
        };
        for (int d = 0; d < opt.directions; ++d) {
            const xt::xarray<double> w = out_n == 1 ? xt::xarray<double>(xt::ones<double>(y0.shape()))
                                                    : random_unit(y0.shape());
            const auto g = analytic(w);
            for (std::size_t i = 0; i < n_in; ++i) {
                const xt::xarray<double> v = random_unit(ck.base[i].shape());
                const double a = detail::sum_all<double>(g[i] * v);
                set(i, v, opt.eps);
                const double fp = detail::sum_all<double>(ck.eval() * w);
                set(i, v, -opt.eps);
                const double fm = detail::sum_all<double>(ck.eval() * w);
                set(i, v, 0.0);
                ck.compare(a, (fp - fm) / (2 * opt.eps), i, {}, {}, static_cast<std::size_t>(d));
            }
        }
    }
    ck.res.message = ck.res.ok ? ck.describe_pass() : ck.describe_fail();
    return ck.res;
}
}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, GradcheckOptions opt) {
    if (!f) throw ValueError("gradcheck: the function is empty");
    check_options(opt, inputs.size());
    std::vector<Tensor> leaves;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        check_f64(inputs[i], i, opt);
        leaves.emplace_back(inputs[i].value<double>(), true).set_name(inputs[i].name());
    }
    return check_in_place([&] { return f(leaves); }, leaves, opt);
}

GradcheckResult gradcheck(const std::function<Tensor()>& f, const std::vector<Tensor>& tensors,
                          GradcheckOptions opt) {
    if (!f) throw ValueError("gradcheck: the function is empty");
    check_options(opt, tensors.size());
    std::vector<bool> wanted(tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        check_f64(tensors[i], i, opt);
        if (!tensors[i].is_leaf())
            throw ValueError(fmt::format("gradcheck: input {} was produced by an op; pass the leaves (parameters, "
                                         "inputs) that f reads",
                                         i));
        wanted[i] = tensors[i].requires_grad();
    }
    // Leave the tensors as they were found: flags restored, gradients cleared, values exact.
    auto restore = [&] {
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            Tensor t = tensors[i];
            t.zero_grad();
            t.set_requires_grad(wanted[i]);
        }
    };
    for (const Tensor& t : tensors) Tensor(t).set_requires_grad(true);
    try {
        GradcheckResult r = check_in_place(f, tensors, opt);
        restore();
        return r;
    } catch (...) {
        restore();
        throw;
    }
}

}  // namespace tapegrad
