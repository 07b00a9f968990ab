// tapegrad: softmax, log_softmax, the losses, dropout and one-hot (see functional.hpp).
// Kernels are plain loops over contiguous row-major data; sums run in double so float32 losses
// over large vocabularies keep their precision. Backward closures add straight into the input's
// gradient buffer, so a loss over [T, B, V] logits allocates no extra [T, B, V] temporaries.
#include "functional.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "detail/kernels.hpp"
#include "detail/op.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::result;

namespace {

// A tensor viewed as `outer` x `n` x `inner`, with `n` the reduced axis: element k of line
// (o, i) sits at o * n * inner + k * inner + i.
struct Lines {
    std::size_t outer = 1, n = 1, inner = 1;
    std::size_t base(std::size_t line) const { return (line / inner) * n * inner + line % inner; }
    std::size_t count() const { return outer * inner; }
};
Lines lines_of(const Shape& s, std::size_t axis) {
    Lines L;
    for (std::size_t d = 0; d < axis; ++d) L.outer *= s[d];
    L.n = s[axis];
    for (std::size_t d = axis + 1; d < s.size(); ++d) L.inner *= s[d];
    return L;
}

std::size_t numel_of(const Shape& s) {
    std::size_t n = 1;
    for (auto d : s) n *= d;
    return n;
}

// "[1, 2]": the multi-index of a flat row-major position, for error messages.
std::string position_str(std::size_t flat, const Shape& shape) {
    Shape idx(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    return shape_str(idx);
}

// 0-d array holding v.
template <class T>
xt::xarray<T> scalar_array(double v) {
    xt::xarray<T> y = xt::xarray<T>::from_shape(Shape{});
    y() = static_cast<T>(v);
    return y;
}

void check_reduction(const char* op, Reduction r) {
    if (r != Reduction::mean && r != Reduction::sum && r != Reduction::none)
        throw ValueError(fmt::format("{}: unknown reduction {}", op, static_cast<int>(r)));
}

// Combine per-element losses [n] (as double) into the op's output.
template <class T>
xt::xarray<T> reduce_losses(const std::vector<double>& l, const Shape& shape, Reduction r, double denom) {
    if (r == Reduction::none) {
        xt::xarray<T> y = xt::xarray<T>::from_shape(shape);
        std::transform(l.begin(), l.end(), y.data(), [](double v) { return static_cast<T>(v); });
        return y;
    }
    double total = 0.0;
    for (double v : l) total += v;
    if (r == Reduction::sum) return scalar_array<T>(total);
    return scalar_array<T>(denom == 0.0 ? std::numeric_limits<double>::quiet_NaN() : total / denom);
}

// The factor d loss / d l_i before the element's own derivative: the output gradient at i (none),
// or the scalar output gradient, divided by the mean's denominator.
template <class T>
struct LossScale {
    const T* g = nullptr;  // none: per element
    T g0 = T(0);           // sum / mean: one value
    bool per_element = false;
    T operator[](std::size_t i) const { return per_element ? g[i] : g0; }
};
template <class T>
LossScale<T> loss_scale(const BackwardCtx& c, Reduction r, double denom) {
    const auto& g = c.grad_out<T>();
    if (r == Reduction::none) return {g.data(), T(0), true};
    const double g0 = static_cast<double>(g());
    // mean with denom 0 has no counted element with nonzero weight, so this factor is never used.
    return {nullptr, static_cast<T>(r == Reduction::mean ? (denom == 0.0 ? 0.0 : g0 / denom) : g0), false};
}

// ---- softmax family ------------------------------------------------------------------------

Tensor softmax_impl(const char* op, const Tensor& x, long axis, bool is_log) {
    detail::check_defined(op, x);
    const Shape s = x.shape();
    const std::size_t ax = detail::norm_axis(op, axis, s);
    const Lines L = lines_of(s, ax);
    return dispatch(x.dtype(), [&]<class T>(T) {
        const T* xv = x.value<T>().data();
        xt::xarray<T> y = xt::xarray<T>::from_shape(s);
        T* yv = y.data();
        for (std::size_t line = 0; line < L.count(); ++line) {
            const std::size_t b = L.base(line);
            T m = -std::numeric_limits<T>::infinity();
            for (std::size_t k = 0; k < L.n; ++k) m = std::max(m, xv[b + k * L.inner]);
            double sum = 0.0;
            for (std::size_t k = 0; k < L.n; ++k) {
                const T e = std::exp(xv[b + k * L.inner] - m);
                if (!is_log) yv[b + k * L.inner] = e;
                sum += e;
            }
            if (is_log) {
                // (x - m) - log(sum), not x - (m + log(sum)): at m = 1000 a float32 m + log(sum)
                // would keep only 4 decimals of log(sum).
                const T log_sum = static_cast<T>(std::log(sum));
                for (std::size_t k = 0; k < L.n; ++k) yv[b + k * L.inner] = (xv[b + k * L.inner] - m) - log_sum;
            } else {
                const T inv = static_cast<T>(1.0 / sum);
                for (std::size_t k = 0; k < L.n; ++k) yv[b + k * L.inner] *= inv;
            }
        }
        return result(op, std::move(y), {&x}, [L, is_log](BackwardCtx& c) {
            const T* gv = c.grad_out<T>().data();
            const T* yv = c.out<T>().data();
            T* dx = c.grad_buffer<T>(0).data();
            for (std::size_t line = 0; line < L.count(); ++line) {
                const std::size_t b = L.base(line);
                double acc = 0.0;  // softmax: sum_k g_k y_k; log_softmax: sum_k g_k
                for (std::size_t k = 0; k < L.n; ++k) {
                    const std::size_t j = b + k * L.inner;
                    acc += is_log ? gv[j] : gv[j] * yv[j];
                }
                const T a = static_cast<T>(acc);
                for (std::size_t k = 0; k < L.n; ++k) {
                    const std::size_t j = b + k * L.inner;
                    if (is_log) dx[j] += gv[j] - std::exp(yv[j]) * a;  // g - softmax * sum(g)
                    else dx[j] += yv[j] * (gv[j] - a);             // y * (g - sum(g * y))
                }
            }
        });
    });
}

// ---- cross_entropy / nll_loss ----------------------------------------------------------------

// Checks shared by the two: returns the targets' shape.
void check_class_loss(const char* op, const char* what, const Tensor& x, const xt::xarray<std::int64_t>& targets,
                      const CrossEntropyOptions& opt) {
    detail::check_defined(op, x, what);
    check_reduction(op, opt.reduction);
    const Shape xs = x.shape();
    const Shape ts = detail::to_shape(targets.shape());
    if (xs.empty())
        throw ShapeError(fmt::format("{}: {} {} has no class axis; expected [.., C] with targets [..]", op, what,
                                     shape_str(xs)));
    const Shape expect(xs.begin(), xs.end() - 1);
    if (ts != expect)
        throw ShapeError(fmt::format("{}: {} {} and targets {}: targets must have the {}' shape without the last "
                                     "(class) axis, {}",
                                     op, what, shape_str(xs), shape_str(ts), what, shape_str(expect)));
    if (opt.weight.defined() && opt.weight.shape() != ts)
        throw ShapeError(fmt::format("{}: weight {} must have the targets' shape {} ({} {})", op,
                                     shape_str(opt.weight.shape()), shape_str(ts), what, shape_str(xs)));
    const std::int64_t C = static_cast<std::int64_t>(xs.back());
    const std::int64_t* t = targets.data();
    for (std::size_t i = 0; i < targets.size(); ++i) {
        if (t[i] == opt.ignore_index || (t[i] >= 0 && t[i] < C)) continue;
        throw ValueError(fmt::format("{}: target {} at position {} is out of range for C = {} classes ({} {}, "
                                     "targets {}; valid: 0 to {}, or ignore_index {})",
                                     op, t[i], position_str(i, ts), C, what, shape_str(xs), shape_str(ts), C - 1,
                                     opt.ignore_index));
    }
}

// The weight as T values [N], or empty when none is given.
template <class T>
std::vector<T> weights_as(const Tensor& w) {
    std::vector<T> out;
    if (!w.defined()) return out;
    dispatch(w.dtype(), [&]<class U>(U) {
        const auto& v = w.value<U>();
        out.assign(v.data(), v.data() + v.size());
    });
    return out;
}

// fused: x holds logits (cross_entropy); otherwise log-probabilities (nll_loss).
Tensor class_loss(const char* op, bool fused, const Tensor& x, const xt::xarray<std::int64_t>& targets,
                  const CrossEntropyOptions& opt) {
    check_class_loss(op, fused ? "logits" : "log_probs", x, targets, opt);
    const Shape ts = detail::to_shape(targets.shape());
    const std::size_t N = targets.size();
    const std::size_t C = x.shape().back();
    return dispatch(x.dtype(), [&]<class T>(T) {
        const T* xv = x.value<T>().data();
        const std::int64_t* tv = targets.data();
        std::vector<T> w = weights_as<T>(opt.weight);
        // Each counted row's max and log(sum(exp(x - max))), for the backward: softmax is
        // exp((x - max) - log_sum), which keeps full precision even for logits near 1000.
        std::vector<T> row_max(fused ? N : 0), log_sum(fused ? N : 0);
        std::vector<double> loss(N, 0.0);
        // Rows that take part: not ignored and not weighted 0. Ignored and zero-weight rows are
        // skipped outright, so whatever their logits hold (padding) cannot reach loss or gradient.
        std::vector<std::uint8_t> counted(N, 0);
        std::vector<T> scratch(fused ? C : 0);
        double denom = 0.0;
        for (std::size_t r = 0; r < N; ++r) {
            if (tv[r] == opt.ignore_index) continue;
            const double wr = w.empty() ? 1.0 : static_cast<double>(w[r]);
            if (wr == 0.0) continue;
            counted[r] = 1;
            denom += wr;
            const T* row = xv + r * C;
            double picked = row[tv[r]];
            if (fused) {
                const T m = *std::max_element(row, row + C);
                const double s = detail::exp_shifted(row, m, scratch.data(), C);
                row_max[r] = m;
                log_sum[r] = static_cast<T>(std::log(s));
                picked = static_cast<double>(row[tv[r]] - m) - static_cast<double>(log_sum[r]);
            }
            loss[r] = -wr * picked;
        }
        xt::xarray<T> y = reduce_losses<T>(loss, ts, opt.reduction, denom);
        xt::xarray<std::int64_t> tgt = targets;
        return result(op, std::move(y), {&x},
                      [fused, C, denom, red = opt.reduction, tgt = std::move(tgt), w = std::move(w),
                       row_max = std::move(row_max), log_sum = std::move(log_sum),
                       counted = std::move(counted)](BackwardCtx& c) {
                          if (!c.needs(0)) return;
                          const LossScale<T> scale = loss_scale<T>(c, red, denom);
                          const T* xv = c.in<T>(0).data();
                          T* dx = c.grad_buffer<T>(0).data();
                          const std::int64_t* tv = tgt.data();
                          std::vector<T> soft(fused ? C : 0);
                          for (std::size_t r = 0; r < counted.size(); ++r) {
                              if (!counted[r]) continue;
                              const T coef = scale[r] * (w.empty() ? T(1) : w[r]);
                              T* drow = dx + r * C;
                              if (fused) {  // d/dx_k = coef * (softmax_k - [k == t])
                                  detail::exp_shifted(xv + r * C, row_max[r] + log_sum[r], soft.data(), C);
                                  for (std::size_t k = 0; k < C; ++k) drow[k] += coef * soft[k];
                              }
                              drow[tv[r]] -= coef;
                          }
                      });
    });
}

// ---- elementwise losses ----------------------------------------------------------------------

void check_pair(const char* op, const char* an, const Tensor& a, const char* bn, const Tensor& b, Reduction r) {
    detail::check_defined(op, a, an);
    detail::check_defined(op, b, bn);
    check_reduction(op, r);
    if (a.shape() != b.shape())
        throw ShapeError(fmt::format("{}: {} {} and {} {} must have the same shape (no broadcasting)", op, an,
                                     shape_str(a.shape()), bn, shape_str(b.shape())));
    detail::check_same_dtype(op, a, b);
}

}  // namespace

Tensor softmax(const Tensor& x, long axis) { return softmax_impl("softmax", x, axis, false); }
Tensor log_softmax(const Tensor& x, long axis) { return softmax_impl("log_softmax", x, axis, true); }

Tensor cross_entropy(const Tensor& logits, const xt::xarray<std::int64_t>& targets, CrossEntropyOptions options) {
    return class_loss("cross_entropy", true, logits, targets, options);
}
Tensor nll_loss(const Tensor& log_probs, const xt::xarray<std::int64_t>& targets, CrossEntropyOptions options) {
    return class_loss("nll_loss", false, log_probs, targets, options);
}

Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
    check_pair("mse_loss", "pred", pred, "target", target, reduction);
    const Shape s = pred.shape();
    return dispatch(pred.dtype(), [&]<class T>(T) {
        const T* p = pred.value<T>().data();
        const T* t = target.value<T>().data();
        const std::size_t n = numel_of(s);
        std::vector<double> l(n);
        for (std::size_t i = 0; i < n; ++i) {
            const double d = static_cast<double>(p[i]) - static_cast<double>(t[i]);
            l[i] = d * d;
        }
        xt::xarray<T> y = reduce_losses<T>(l, s, reduction, static_cast<double>(n));
        return result("mse_loss", std::move(y), {&pred, &target}, [reduction, n](BackwardCtx& c) {
            const LossScale<T> scale = loss_scale<T>(c, reduction, static_cast<double>(n));
            const T* p = c.in<T>(0).data();
            const T* t = c.in<T>(1).data();
            xt::xarray<T> dp = xt::xarray<T>::from_shape(c.in<T>(0).shape());  // d/dpred = 2 (p - t)
            T* d = dp.data();
            for (std::size_t i = 0; i < n; ++i) d[i] = T(2) * scale[i] * (p[i] - t[i]);
            if (c.needs(1)) c.accumulate<T>(1, -dp);
            c.accumulate<T>(0, std::move(dp));
        });
    });
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction) {
    const char* op = "binary_cross_entropy_with_logits";
    check_pair(op, "logits", logits, "targets", targets, reduction);
    const Shape s = logits.shape();
    return dispatch(logits.dtype(), [&]<class T>(T) {
        const T* x = logits.value<T>().data();
        const T* t = targets.value<T>().data();
        const std::size_t n = numel_of(s);
        std::vector<double> l(n);
        for (std::size_t i = 0; i < n; ++i) {
            if (!(t[i] >= T(0) && t[i] <= T(1)))
                throw ValueError(fmt::format("{}: target {} at position {} is outside [0, 1] (logits and targets {})",
                                             op, t[i], position_str(i, s), shape_str(s)));
            const double xi = x[i];
            l[i] = std::max(xi, 0.0) - xi * static_cast<double>(t[i]) + std::log1p(std::exp(-std::abs(xi)));
        }
        xt::xarray<T> y = reduce_losses<T>(l, s, reduction, static_cast<double>(n));
        return result(op, std::move(y), {&logits, &targets}, [reduction, n](BackwardCtx& c) {
            const LossScale<T> scale = loss_scale<T>(c, reduction, static_cast<double>(n));
            const T* x = c.in<T>(0).data();
            const T* t = c.in<T>(1).data();
            if (c.needs(0)) {  // d/dx = sigmoid(x) - t
                T* dx = c.grad_buffer<T>(0).data();
                for (std::size_t i = 0; i < n; ++i) {
                    const T e = std::exp(-std::abs(x[i]));  // in (0, 1]: no overflow for either sign
                    const T sig = x[i] >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
                    dx[i] += scale[i] * (sig - t[i]);
                }
            }
            if (c.needs(1)) {  // d/dt = -x
                T* dt = c.grad_buffer<T>(1).data();
                for (std::size_t i = 0; i < n; ++i) dt[i] -= scale[i] * x[i];
            }
        });
    });
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
    detail::check_defined("dropout", x);
    if (!(p >= 0.0 && p <= 1.0))
        throw ValueError(fmt::format("dropout: p = {} is outside [0, 1] (input {})", p, shape_str(x.shape())));
    if (!training || p == 0.0) return x;
    return dispatch(x.dtype(), [&]<class T>(T) {
        const auto& xv = x.value<T>();
        // The mask holds 0 or 1 / (1 - p), so backward is one multiply.
        xt::xarray<T> mask = xt::xarray<T>::from_shape(xv.shape());
        T* m = mask.data();
        if (p == 1.0) {
            std::fill(m, m + mask.size(), T(0));
        } else {
            const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
            for (std::size_t i = 0; i < mask.size(); ++i) m[i] = gen.uniform() < p ? T(0) : keep_scale;
        }
        xt::xarray<T> y = xt::xarray<T>::from_shape(xv.shape());
        const T* xd = xv.data();
        T* yd = y.data();
        for (std::size_t i = 0; i < y.size(); ++i) yd[i] = xd[i] * m[i];
        return result("dropout", std::move(y), {&x}, [mask = std::move(mask)](BackwardCtx& c) {
            const T* g = c.grad_out<T>().data();
            const T* m = mask.data();
            T* dx = c.grad_buffer<T>(0).data();
            for (std::size_t i = 0; i < mask.size(); ++i) dx[i] += g[i] * m[i];
        });
    });
}

Tensor dropout(const Tensor& x, double p, bool training) { return dropout(x, p, training, default_generator()); }

Tensor one_hot(const xt::xarray<std::int64_t>& ids, std::size_t num_classes, DType dtype) {
    const Shape is = detail::to_shape(ids.shape());
    // Above 2^63 - 1 the signed bound below would be negative; such a count cannot be allocated anyway.
    if (num_classes > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()))
        throw ValueError(fmt::format("one_hot: num_classes {} is too large (ids {})", num_classes, shape_str(is)));
    const std::int64_t C = static_cast<std::int64_t>(num_classes);
    const std::int64_t* iv = ids.data();
    for (std::size_t i = 0; i < ids.size(); ++i)
        if (iv[i] < 0 || iv[i] >= C)
            throw ValueError(fmt::format("one_hot: id {} at position {} of ids {} is out of range for num_classes {} "
                                         "(valid: 0 to {})",
                                         iv[i], position_str(i, is), shape_str(is), num_classes, C - 1));
    Shape out = is;
    out.push_back(num_classes);
    return dispatch(dtype, [&]<class T>(T) {
        xt::xarray<T> y = detail::new_array<T>("one_hot", out);
        std::fill(y.data(), y.data() + y.size(), T(0));
        for (std::size_t i = 0; i < ids.size(); ++i) y.data()[i * num_classes + static_cast<std::size_t>(iv[i])] = T(1);
        return Tensor(std::move(y));
    });
}

}  // namespace tapegrad
