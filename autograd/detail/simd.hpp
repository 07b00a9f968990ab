// tapegrad internal: the vectorised kernels, written once for any xsimd architecture. kernels.hpp
// instantiates them for the architecture the library is compiled for, kernels_avx2.cpp for AVX2;
// the two instantiations are distinct functions, as their Arch argument differs. Includes nothing
// but xsimd and <cmath>, so the AVX2 file compiles no other inline code with AVX2 enabled.
#pragma once

#include <cmath>
#include <cstddef>

#include <xsimd/xsimd.hpp>

namespace tapegrad::detail::simd {

// p[i] = tanh(p[i]) (xsimd's tanh, the kernel xtensor's xt::tanh uses).
template <class Arch, class T>
void tanh_inplace(T* p, std::size_t n) {
    using Batch = xsimd::batch<T, Arch>;
    constexpr std::size_t W = Batch::size;
    std::size_t i = 0;
    for (; i + W <= n; i += W) xsimd::tanh(Batch::load_unaligned(p + i)).store_unaligned(p + i);
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
    for (; i + W <= n; i += W) (one / (one + xsimd::exp(-Batch::load_unaligned(p + i)))).store_unaligned(p + i);
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
        xsimd::exp(Batch::load_unaligned(in + i) - s).store_unaligned(out + i);
        for (std::size_t j = i; j < i + W; ++j) sum += static_cast<double>(out[j]);
    }
    for (; i < n; ++i) {
        out[i] = std::exp(in[i] - shift);
        sum += static_cast<double>(out[i]);
    }
    return sum;
}

}  // namespace tapegrad::detail::simd
