// tapegrad internal: the vectorised kernels, written once for any xsimd architecture. kernels.hpp
// instantiates them for the architecture the library is compiled for, kernels_avx2.cpp for AVX2;
// the two instantiations are distinct functions, as their Arch argument differs. Includes nothing
// but xsimd and <cmath>, so the AVX2 file compiles no other inline code with AVX2 enabled.
#pragma once

#include <cmath>
#include <cstddef>

#include <xsimd/xsimd.hpp>

namespace tapegrad::detail::simd {

// What xsimd's exp (and tanh, built on it) can take: it converts x / ln 2 to an integer before it
// selects inf or 0 for a large |x|, and for a NaN or an |x| beyond that integer's range (about 1e9
// in float, 6e18 in double) the conversion is undefined behaviour. x is clamped to [-lim, lim], a
// bound where the result is already exact (tanh(20) is 1, exp(1000) inf and exp(-1000) 0 in both
// types), and a NaN becomes 0; with_nan then puts the NaNs back into the result.
template <class Batch, class T>
Batch bounded(const Batch& x, T lim) {
    const Batch hi(lim), lo(-lim);
    return xsimd::select(xsimd::isnan(x), Batch(T(0)), xsimd::select(x > hi, hi, xsimd::select(x < lo, lo, x)));
}
template <class Batch>
Batch with_nan(const Batch& x, const Batch& result) {
    return xsimd::select(xsimd::isnan(x), x, result);
}
inline constexpr double kTanhBound = 20.0;
inline constexpr double kExpBound = 1000.0;

// p[i] = tanh(p[i]) (xsimd's tanh, the kernel xtensor's xt::tanh uses).
template <class Arch, class T>
void tanh_inplace(T* p, std::size_t n) {
    using Batch = xsimd::batch<T, Arch>;
    constexpr std::size_t W = Batch::size;
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
        const Batch x = Batch::load_unaligned(p + i);
        with_nan(x, xsimd::tanh(bounded(x, T(kTanhBound)))).store_unaligned(p + i);
    }
    for (; i < n; ++i) p[i] = std::tanh(p[i]);
}

// p[i] = 1 / (1 + exp(-p[i])), the formula of the sigmoid op (exp(-x) overflows only to inf,
// giving 0), with xsimd's exp.
template <class Arch, class T>
void sigmoid_inplace(T* p, std::size_t n) {
    using Batch = xsimd::batch<T, Arch>;
    constexpr std::size_t W = Batch::size;
    const Batch one(T(1));
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
        const Batch x = Batch::load_unaligned(p + i);
        with_nan(x, one / (one + xsimd::exp(-bounded(x, T(kExpBound))))).store_unaligned(p + i);
    }
    for (; i < n; ++i) p[i] = T(1) / (T(1) + std::exp(-p[i]));
}

// out[i] = exp(in[i] - shift); returns the sum of out, accumulated in double.
template <class Arch, class T>
double exp_shifted(const T* in, T shift, T* out, std::size_t n) {
    using Batch = xsimd::batch<T, Arch>;
    constexpr std::size_t W = Batch::size;
    const Batch s(shift);
    std::size_t i = 0;
    double sum = 0;
    for (; i + W <= n; i += W) {
        const Batch x = Batch::load_unaligned(in + i) - s;
        with_nan(x, xsimd::exp(bounded(x, T(kExpBound)))).store_unaligned(out + i);
        for (std::size_t j = i; j < i + W; ++j) sum += static_cast<double>(out[j]);
    }
    for (; i < n; ++i) {
        out[i] = std::exp(in[i] - shift);
        sum += static_cast<double>(out[i]);
    }
    return sum;
}

}  // namespace tapegrad::detail::simd
