// tapegrad::nn::init: the initialisers. Values are computed in double from the Generator's draws
// and rounded once to the tensor's dtype; orthogonal_ uses a Householder QR of its own (the sign
// correction makes the result independent of which QR routine produced it).
#include "init.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>

namespace tapegrad::nn::init {

namespace {
void check_defined(const char* op, const Tensor& t) {
    if (!t.defined()) throw ValueError(fmt::format("{}: the tensor is undefined", op));
}
void check_finite(const char* op, const char* what, double v) {
    if (!std::isfinite(v)) throw ValueError(fmt::format("{}: {} {} is not finite", op, what, v));
}
void check_gain(const char* op, double gain) {
    if (!std::isfinite(gain) || gain < 0.0)
        throw ValueError(fmt::format("{}: gain {} must be finite and >= 0", op, gain));
}

// Writes draw(i) (a double) into every element i of t, in row-major order, rounded to t's dtype.
template <class Draw>
Tensor fill(Tensor t, Draw&& draw) {
    if (t.dtype() == f64) {
        auto& v = t.mutable_value<double>();
        for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = draw(i);
    } else {
        auto& v = t.mutable_value<float>();
        for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = static_cast<float>(draw(i));
    }
    return t;
}

Fans fans(const char* op, const Shape& shape) {
    if (shape.size() < 2)
        throw ShapeError(fmt::format("{}: fan_in and fan_out cannot be computed for a tensor with fewer than 2 "
                                     "dimensions (shape {})",
                                     op, shape_str(shape)));
    std::size_t receptive = 1;
    for (std::size_t d = 2; d < shape.size(); ++d) receptive *= shape[d];
    return {shape[1] * receptive, shape[0] * receptive};
}

// U[lo, hi) in t's dtype: a value that rounds up to hi is moved just below it, as uniform() does.
Tensor fill_uniform(Tensor t, double lo, double hi, Generator& gen) {
    if (lo == hi) return fill(std::move(t), [&](std::size_t) { return lo; });
    const double width = hi - lo;
    if (t.dtype() == f64) {
        const double top = std::nextafter(hi, -std::numeric_limits<double>::infinity());
        return fill(std::move(t), [&](std::size_t) { return std::min(lo + width * gen.uniform(), top); });
    }
    const float h = static_cast<float>(hi);
    const float top = static_cast<double>(h) < hi ? h : std::nextafter(h, -std::numeric_limits<float>::infinity());
    auto& v = t.mutable_value<float>();
    for (std::size_t i = 0; i < v.size(); ++i)
        v.data()[i] = std::min(static_cast<float>(lo + width * gen.uniform()), top);
    return t;
}

Tensor fill_normal(Tensor t, double mean, double std, Generator& gen) {
    return fill(std::move(t), [&](std::size_t) { return mean + std * gen.normal(); });
}

std::size_t fan_for(const char* op, const Tensor& t, FanMode mode) {
    const Fans f = fans(op, t.shape());
    return mode == FanMode::fan_in ? f.fan_in : f.fan_out;
}

double kaiming_std(const char* op, const Tensor& t, const KaimingOptions& o) {
    check_finite(op, "a", o.a);
    const std::size_t fan = fan_for(op, t, o.mode);
    double gain;
    try {
        gain = calculate_gain(o.nonlinearity, o.a);
    } catch (const ValueError& e) {
        throw ValueError(fmt::format("{}: {}", op, e.what()));
    }
    return gain / std::sqrt(static_cast<double>(fan));
}
}  // namespace

Fans calculate_fan_in_and_fan_out(const Shape& shape) { return fans("calculate_fan_in_and_fan_out", shape); }
Fans calculate_fan_in_and_fan_out(const Tensor& t) {
    check_defined("calculate_fan_in_and_fan_out", t);
    return calculate_fan_in_and_fan_out(t.shape());
}

double calculate_gain(const std::string& nonlinearity, std::optional<double> param) {
    for (const char* unit : {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                             "conv_transpose3d", "sigmoid"})
        if (nonlinearity == unit) return 1.0;
    if (nonlinearity == "tanh") return 5.0 / 3.0;
    if (nonlinearity == "relu") return std::sqrt(2.0);
    if (nonlinearity == "leaky_relu") {
        const double slope = param.value_or(0.01);
        if (!std::isfinite(slope))
            throw ValueError(fmt::format("calculate_gain: negative_slope {} for leaky_relu is not finite", slope));
        return std::sqrt(2.0 / (1.0 + slope * slope));
    }
    if (nonlinearity == "selu") return 3.0 / 4.0;
    throw ValueError(fmt::format("calculate_gain: unsupported nonlinearity '{}'; known: linear, conv1d, conv2d, "
                                 "conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, sigmoid, tanh, "
                                 "relu, leaky_relu, selu",
                                 nonlinearity));
}

Tensor uniform_(Tensor t, double a, double b, Generator& gen) {
    check_defined("uniform_", t);
    check_finite("uniform_", "a", a);
    check_finite("uniform_", "b", b);
    if (a > b) throw ValueError(fmt::format("uniform_: a {} must be <= b {} (shape {})", a, b, shape_str(t.shape())));
    if (!std::isfinite(b - a))
        throw ValueError(fmt::format("uniform_: the width b - a of [{}, {}) overflows", a, b));
    return fill_uniform(std::move(t), a, b, gen);
}

Tensor normal_(Tensor t, double mean, double std, Generator& gen) {
    check_defined("normal_", t);
    check_finite("normal_", "mean", mean);
    if (!std::isfinite(std) || std < 0.0)
        throw ValueError(fmt::format("normal_: std {} must be finite and >= 0 (shape {})", std, shape_str(t.shape())));
    return fill_normal(std::move(t), mean, std, gen);
}

Tensor constant_(Tensor t, double value) {
    check_defined("constant_", t);
    check_finite("constant_", "value", value);
    return fill(std::move(t), [&](std::size_t) { return value; });
}
Tensor zeros_(Tensor t) {
    check_defined("zeros_", t);
    return fill(std::move(t), [](std::size_t) { return 0.0; });
}
Tensor ones_(Tensor t) {
    check_defined("ones_", t);
    return fill(std::move(t), [](std::size_t) { return 1.0; });
}

Tensor eye_(Tensor t) {
    check_defined("eye_", t);
    if (t.dim() != 2)
        throw ShapeError(fmt::format("eye_: only 2-D tensors are supported (shape {})", shape_str(t.shape())));
    const std::size_t cols = t.shape()[1];
    return fill(std::move(t), [&](std::size_t i) { return i / cols == i % cols ? 1.0 : 0.0; });
}

Tensor xavier_uniform_(Tensor t, double gain, Generator& gen) {
    check_defined("xavier_uniform_", t);
    check_gain("xavier_uniform_", gain);
    const Fans f = fans("xavier_uniform_", t.shape());
    if (t.numel() == 0) return t;
    const double a = std::sqrt(3.0) * gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out));
    return a == 0.0 ? zeros_(std::move(t)) : fill_uniform(std::move(t), -a, a, gen);
}

Tensor xavier_normal_(Tensor t, double gain, Generator& gen) {
    check_defined("xavier_normal_", t);
    check_gain("xavier_normal_", gain);
    const Fans f = fans("xavier_normal_", t.shape());
    if (t.numel() == 0) return t;
    return fill_normal(std::move(t), 0.0, gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out)), gen);
}

Tensor kaiming_uniform_(Tensor t, const KaimingOptions& options, Generator& gen) {
    check_defined("kaiming_uniform_", t);
    if (t.numel() == 0) {  // checks the shape and options even so
        fans("kaiming_uniform_", t.shape());
        return t;
    }
    const double bound = std::sqrt(3.0) * kaiming_std("kaiming_uniform_", t, options);
    return fill_uniform(std::move(t), -bound, bound, gen);
}

Tensor kaiming_normal_(Tensor t, const KaimingOptions& options, Generator& gen) {
    check_defined("kaiming_normal_", t);
    if (t.numel() == 0) {
        fans("kaiming_normal_", t.shape());
        return t;
    }
    // Computed before the call: t is moved into fill_normal's parameter, and the order in which
    // arguments are evaluated is unspecified (clang reads them left to right).
    const double sd = kaiming_std("kaiming_normal_", t, options);
    return fill_normal(std::move(t), 0.0, sd, gen);
}

Tensor orthogonal_(Tensor t, double gain, Generator& gen) {
    check_defined("orthogonal_", t);
    check_finite("orthogonal_", "gain", gain);
    if (t.dim() < 2)
        throw ShapeError(fmt::format("orthogonal_: only tensors with 2 or more dimensions are supported (shape {})",
                                     shape_str(t.shape())));
    if (t.numel() == 0) return t;
    const std::size_t rows = t.shape()[0], cols = t.numel() / rows;
    // The normal draws fill [rows, cols] row by row, as PyTorch's flattened.normal_().
    std::vector<double> draws(rows * cols);
    for (double& x : draws) x = gen.normal();
    // Factor A [m, n], m >= n: A itself, or its transpose when rows < cols.
    const bool transposed = rows < cols;
    const std::size_t m = transposed ? cols : rows, n = transposed ? rows : cols;
    std::vector<double> a(m * n);  // [m, n] row-major
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) (transposed ? a[c * n + r] : a[r * n + c]) = draws[r * cols + c];
    // Householder: H_k = I - 2 v_k v_k^T zeroes column k below the diagonal; R's diagonal is kept.
    std::vector<std::vector<double>> vs(n);
    std::vector<double> r_diag(n);
    for (std::size_t k = 0; k < n; ++k) {
        double norm = 0;
        for (std::size_t i = k; i < m; ++i) norm += a[i * n + k] * a[i * n + k];
        norm = std::sqrt(norm);
        if (norm == 0.0) {  // the column is already zero: H_k = I
            r_diag[k] = 0.0;
            continue;
        }
        const double alpha = a[k * n + k] > 0 ? -norm : norm;  // the sign that avoids cancellation
        std::vector<double> v(m - k);
        for (std::size_t i = k; i < m; ++i) v[i - k] = a[i * n + k];
        v[0] -= alpha;
        double vnorm = 0;
        for (double x : v) vnorm += x * x;
        vnorm = std::sqrt(vnorm);
        for (double& x : v) x /= vnorm;
        for (std::size_t j = k; j < n; ++j) {
            double dot = 0;
            for (std::size_t i = k; i < m; ++i) dot += v[i - k] * a[i * n + j];
            for (std::size_t i = k; i < m; ++i) a[i * n + j] -= 2.0 * v[i - k] * dot;
        }
        r_diag[k] = alpha;
        vs[k] = std::move(v);
    }
    // Q [m, n] = H_0 H_1 ... H_{n-1} applied to the first n columns of the identity.
    std::vector<double> q(m * n, 0.0);
    for (std::size_t j = 0; j < n; ++j) q[j * n + j] = 1.0;
    for (std::size_t k = n; k-- > 0;) {
        if (vs[k].empty()) continue;
        for (std::size_t j = 0; j < n; ++j) {
            double dot = 0;
            for (std::size_t i = k; i < m; ++i) dot += vs[k][i - k] * q[i * n + j];
            for (std::size_t i = k; i < m; ++i) q[i * n + j] -= 2.0 * vs[k][i - k] * dot;
        }
    }
    // PyTorch's correction: q *= sign(diag(R)), so that R's diagonal is positive and Q unique.
    for (std::size_t j = 0; j < n; ++j)
        if (r_diag[j] < 0)
            for (std::size_t i = 0; i < m; ++i) q[i * n + j] = -q[i * n + j];
    // Element (r, c) of the [rows, cols] result: Q's, or Q^T's when A was transposed.
    return fill(std::move(t), [&](std::size_t idx) {
        const std::size_t r = idx / cols, c = idx % cols;
        return gain * (transposed ? q[c * n + r] : q[r * n + c]);
    });
}

}  // namespace tapegrad::nn::init
