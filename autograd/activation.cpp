// tapegrad: activation functions, each a detail::unary_op: the forward map and the derivative as a
// function of (x, y). Where the derivative is a function of the output (tanh' = 1 - y^2,
// sigmoid' = y (1 - y)) the backward reuses the saved output. tanh and sigmoid run the fused
// recurrent ops' vectorised kernels (detail/kernels.hpp: AVX2 when the CPU has it, chosen at run
// time), so a cell composed from them computes its gates as fast, and as exactly, as the fused ops.
#include <algorithm>
#include <cmath>

#include "activation.hpp"
#include "detail/kernels.hpp"
#include "detail/op.hpp"

namespace tapegrad {

using detail::elementwise;
using detail::unary_op;

Tensor tanh(const Tensor& x) {
    return unary_op(
        "tanh", x,
        []<class T>(const xt::xarray<T>& v) {
            xt::xarray<T> y = v;
            detail::tanh_inplace(y.data(), y.size());
            return y;
        },
        []<class T>(T, T y) { return T(1) - y * y; });
}

Tensor sigmoid(const Tensor& x) {
    // 1 / (1 + e^-x) overflows only to e^-x = inf, giving 0: stable for both signs.
    return unary_op(
        "sigmoid", x,
        []<class T>(const xt::xarray<T>& v) {
            xt::xarray<T> y = v;
            detail::sigmoid_inplace(y.data(), y.size());
            return y;
        },
        []<class T>(T, T y) { return y * (T(1) - y); });
}

Tensor relu(const Tensor& x) {
    // v < 0 rather than v > 0 so that NaN passes through unchanged.
    return unary_op("relu", x, elementwise([]<class T>(T v) { return v < T(0) ? T(0) : v; }),
                    []<class T>(T v, T) { return T(v > T(0)); });
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
    return unary_op(
        "leaky_relu", x, elementwise([negative_slope]<class T>(T v) { return v > T(0) ? v : T(negative_slope) * v; }),
        [negative_slope]<class T>(T v, T) { return v > T(0) ? T(1) : T(negative_slope); });
}

Tensor hardtanh(const Tensor& x, double lo, double hi) {
    detail::check_defined("hardtanh", x);
    if (!(lo <= hi))
        throw ValueError(fmt::format("hardtanh: min {} must not exceed max {} (input of shape {})", lo, hi,
                                     shape_str(x.shape())));
    return unary_op(
        "hardtanh", x,
        elementwise([lo, hi]<class T>(T v) { return v < T(lo) ? T(lo) : v > T(hi) ? T(hi) : v; }),
        [lo, hi]<class T>(T v, T) { return T(v > T(lo) && v < T(hi)); });
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
    detail::check_defined("softplus", x);
    if (!(beta > 0))
        throw ValueError(fmt::format("softplus: beta must be positive, got {} (input of shape {})", beta,
                                     shape_str(x.shape())));
    // log(1 + e^z) = max(z, 0) + log1p(e^-|z|): the exponent is never positive, so nothing overflows.
    return unary_op(
        "softplus", x,
        elementwise([beta, threshold]<class T>(T v) {
            const T z = T(beta) * v;
            return z > T(threshold) ? v : (std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)))) / T(beta);
        }),
        [beta, threshold]<class T>(T v, T) {  // sigmoid(z), through e^-|z| for the same reason
            const T z = T(beta) * v, e = std::exp(-std::abs(z));
            return z > T(threshold) ? T(1) : z >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
        });
}

}  // namespace tapegrad
