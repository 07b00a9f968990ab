// Small helpers shared by the test programs: random and seeded tensors, comparisons, gradient
// checks, fixtures and scratch files. A helper used by one program only stays in that program.
//   #include "test_util.hpp"
//   using namespace tapegrad::test;
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <tapegrad/tapegrad.hpp>

namespace tapegrad::test {

// ---- tensors --------------------------------------------------------------------------------------

// A tensor of `shape` with entries uniform in [lo, hi), in dtype dt (drawn as doubles, then rounded).
template <std::uniform_random_bit_generator Gen>
Tensor uniform(Gen& gen, const Shape& shape, DType dt = f64, double lo = -1.0, double hi = 1.0) {
    std::uniform_real_distribution<double> u(lo, hi);
    xt::xarray<double> v = xt::xarray<double>::from_shape(shape);
    for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = u(gen);
    Tensor t(std::move(v));
    return dt == f64 ? t : t.to(f32);
}

// A standard-normal tensor of shape s and dtype dt, the same for the same seed.
inline Tensor seq(const Shape& s, std::uint64_t seed, DType dt = f64) {
    Generator g(seed);
    return randn(s, g, dt);
}

// A fixed, non-trivial scalar of an output so every element gets a distinct weight.
inline Tensor weighted_sum(const Tensor& y, std::uint64_t seed) { return sum(y * seq(y.shape(), seed, y.dtype())); }

// t's elements as doubles, flat in row-major order.
inline std::vector<double> values(const Tensor& t) {
    std::vector<double> v(t.numel());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = t.at(i);
    return v;
}

// Every parameter of m as doubles, flat, one after another in parameters() order.
inline std::vector<double> flat(const nn::Module& m) {
    std::vector<double> out;
    for (const Tensor& p : m.parameters())
        for (std::size_t i = 0; i < p.numel(); ++i) out.push_back(p.at(i));
    return out;
}

// Calls f(idx) for every multi-index of `shape` in row-major order.
inline void for_each_index(const Shape& shape, const std::function<void(const Shape&)>& f) {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    Shape idx(shape.size(), 0);
    for (std::size_t k = 0; k < n; ++k) {
        f(idx);
        for (std::size_t d = shape.size(); d-- > 0;) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
}

// A next-token batch from a token stream: B windows of T + 1 tokens at starts drawn with gen (one
// per batch row, in row order), as [T, B] ids and the [T, B] targets one token further on.
inline std::pair<xt::xarray<std::int64_t>, xt::xarray<std::int64_t>> random_windows(
    const std::vector<std::int64_t>& stream, std::size_t T, std::size_t B, Generator& gen) {
    xt::xarray<std::int64_t> ids = xt::xarray<std::int64_t>::from_shape({T, B});
    xt::xarray<std::int64_t> targets = xt::xarray<std::int64_t>::from_shape({T, B});
    for (std::size_t b = 0; b < B; ++b) {
        const std::size_t start = gen.randint(stream.size() - T - 1);
        for (std::size_t t = 0; t < T; ++t) {
            ids.data()[t * B + b] = stream[start + t];
            targets.data()[t * B + b] = stream[start + t + 1];
        }
    }
    return {std::move(ids), std::move(targets)};
}

// ---- comparisons ----------------------------------------------------------------------------------

// The largest |a - b| over the elements of two tensors of the same shape.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    double m = 0;
    for (std::size_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.at(i) - b.at(i)));
    return m;
}
// The largest |a - b| over two vectors of the same size.
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}
// The largest |ours - ref| / (1 + |ref|) over the elements of two tensors of the same shape.
inline double max_rel_diff(const Tensor& ours, const Tensor& ref) {
    REQUIRE(ours.shape() == ref.shape());
    double m = 0;
    for (std::size_t i = 0; i < ref.numel(); ++i)
        m = std::max(m, std::abs(ours.at(i) - ref.at(i)) / (1.0 + std::abs(ref.at(i))));
    return m;
}

// ---- gradients ------------------------------------------------------------------------------------

// Returns only if gradcheck(f, inputs) passes (a failed REQUIRE, with its message, otherwise).
inline void require_gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs) {
    const GradcheckResult r = gradcheck(f, inputs);
    INFO(r.message);
    REQUIRE(r.ok);
}

// d sum(f(x)) / dx for a fresh copy of x.
inline Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const Tensor& x0) {
    Tensor x = x0.detach().set_requires_grad(true);
    Tape tape;
    tape.backward(sum(f(x)));
    REQUIRE(x.has_grad());
    return x.grad();
}

// ---- files ----------------------------------------------------------------------------------------

// The tensors of tests/fixtures/<name>.npz by name.
inline std::map<std::string, Tensor> load_fixture(const std::string& name) {
    std::map<std::string, Tensor> m;
    for (auto& [k, v] : nn::load_tensors(std::string(TAPEGRAD_FIXTURES_DIR) + "/" + name + ".npz")) m.emplace(k, v);
    return m;
}

// One test program's scratch directory, <temp>/<dir_name>. Each program names its own, so that
// programs running at the same time never share a file:
//   const test::ScratchDir scratch("tapegrad_test_serialize");  ...  scratch("lin.npz")
class ScratchDir {
public:
    explicit ScratchDir(std::string dir_name) : dir_name_(std::move(dir_name)) {}
    // The path of `name` in the directory, which is created if missing.
    std::filesystem::path operator()(const std::string& name) const {
        const std::filesystem::path dir = std::filesystem::temp_directory_path() / dir_name_;
        std::filesystem::create_directories(dir);
        return dir / name;
    }

private:
    std::string dir_name_;
};

// Path p, after writing exactly `bytes` to it (replacing what was there).
inline std::filesystem::path write_file(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
}

// The whole content of file p, byte for byte (empty if it cannot be read).
inline std::string read_all(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace tapegrad::test
