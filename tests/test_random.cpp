// The portable Generator and the random tensor factories: the same seed gives bitwise-identical
// numbers, the transforms match their definitions bit for bit, the distributions have the right
// moments, randint is unbiased, and a saved state resumes the exact stream.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Catch::Matchers::Contains;

namespace {

template <class T>
bool bitwise_equal(const Tensor& a, const Tensor& b) {
    const auto& x = a.value<T>();
    const auto& y = b.value<T>();
    return a.shape() == b.shape() && std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0;
}

struct Moments {
    double mean = 0, var = 0;
};
template <class T>
Moments moments(const Tensor& t) {
    const auto& v = t.value<T>();
    const double n = static_cast<double>(v.size());
    double s = 0, s2 = 0;
    for (std::size_t i = 0; i < v.size(); ++i) s += v.data()[i];
    const double m = s / n;
    for (std::size_t i = 0; i < v.size(); ++i) s2 += (v.data()[i] - m) * (v.data()[i] - m);
    return {m, s2 / (n - 1)};
}

}  // namespace

TEST_CASE("the engine is the standard's mt19937_64 and uniform() keeps its top 53 bits", "[random]") {
    Generator gen;  // seed 5489, the standard's default
    std::uint64_t v = 0;
    for (int i = 0; i < 10000; ++i) v = gen.next_u64();
    CHECK(v == 9981545732273789042ull);  // fixed by the C++ standard for the 10000th draw

    Generator a(77);
    std::mt19937_64 ref(77);
    for (int i = 0; i < 1000; ++i) {
        const std::uint64_t bits = ref();
        const double u = a.uniform();
        REQUIRE(u == std::ldexp(static_cast<double>(bits >> 11), -53));
        REQUIRE(u >= 0.0);
        REQUIRE(u < 1.0);
    }
}

TEST_CASE("normal() is Marsaglia's polar method on uniform()", "[random]") {
    Generator gen(3), uni(3);
    for (int pair = 0; pair < 500; ++pair) {
        double u, v, s;
        do {
            u = 2 * uni.uniform() - 1;
            v = 2 * uni.uniform() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        const double m = std::sqrt(-2 * std::log(s) / s);
        REQUIRE(gen.normal() == u * m);
        REQUIRE(gen.normal() == v * m);
    }
}

TEST_CASE("the same seed gives bitwise-identical tensors, another seed differs", "[random]") {
    for (DType dt : {f32, f64}) {
        Generator a(2024), b(2024), c(2025);
        const Shape s{7, 11};
        const Tensor ra = rand(s, a, dt), rb = rand(s, b, dt), rc = rand(s, c, dt);
        const Tensor na = randn(s, a, dt), nb = randn(s, b, dt), nc = randn(s, c, dt);
        const Tensor ua = uniform(s, -0.3, 0.3, a, dt), ub = uniform(s, -0.3, 0.3, b, dt);
        CHECK(ra.dtype() == dt);
        CHECK(ra.shape() == s);
        if (dt == f32) {
            CHECK(bitwise_equal<float>(ra, rb));
            CHECK(bitwise_equal<float>(na, nb));
            CHECK(bitwise_equal<float>(ua, ub));
            CHECK_FALSE(bitwise_equal<float>(ra, rc));
            CHECK_FALSE(bitwise_equal<float>(na, nc));
        } else {
            CHECK(bitwise_equal<double>(ra, rb));
            CHECK(bitwise_equal<double>(na, nb));
            CHECK(bitwise_equal<double>(ua, ub));
            CHECK_FALSE(bitwise_equal<double>(ra, rc));
            CHECK_FALSE(bitwise_equal<double>(na, nc));
        }
    }
    // manual_seed restarts the stream exactly.
    Generator g(9);
    const Tensor first = randn({50}, g, f64);
    g.manual_seed(9);
    CHECK(bitwise_equal<double>(first, randn({50}, g, f64)));
    CHECK(g.initial_seed() == 9);
}

TEST_CASE("float32 draws are the float64 draws rounded", "[random]") {
    Generator a(5), b(5);
    const Tensor d = randn({1000}, a, f64);
    const Tensor f = randn({1000}, b, f32);
    for (std::size_t i = 0; i < 1000; ++i) REQUIRE(f.value<float>().data()[i] == static_cast<float>(d.at(i)));
}

TEST_CASE("rand, uniform and randn have the right moments over 100k draws", "[random]") {
    Generator gen(123);
    for (DType dt : {f32, f64}) {
        const Tensor u = rand({100000}, gen, dt);
        const Moments mu = dt == f32 ? moments<float>(u) : moments<double>(u);
        CHECK(mu.mean == Approx(0.5).margin(0.005));         // std error 0.0009
        CHECK(mu.var == Approx(1.0 / 12).margin(0.002));     // std error 0.0003
        const Tensor w = uniform({100000}, -2.0, 6.0, gen, dt);
        const Moments mw = dt == f32 ? moments<float>(w) : moments<double>(w);
        CHECK(mw.mean == Approx(2.0).margin(0.04));          // std error 0.007
        CHECK(mw.var == Approx(64.0 / 12).margin(0.1));      // std error 0.02
        double lo = 1e9, hi = -1e9;
        for (std::size_t i = 0; i < w.numel(); ++i) {
            lo = std::min(lo, w.at(i));
            hi = std::max(hi, w.at(i));
        }
        CHECK(lo >= -2.0);
        CHECK(hi < 6.0);
        CHECK(lo < -1.99);
        CHECK(hi > 5.99);

        const Tensor n = randn({100000}, gen, dt);
        const Moments mn = dt == f32 ? moments<float>(n) : moments<double>(n);
        CHECK(mn.mean == Approx(0.0).margin(0.015));  // std error 0.003
        CHECK(mn.var == Approx(1.0).margin(0.025));   // std error 0.0045
        std::size_t within1 = 0;
        for (std::size_t i = 0; i < n.numel(); ++i) within1 += std::abs(n.at(i)) < 1.0;
        CHECK(static_cast<double>(within1) / 1e5 == Approx(0.682689).margin(0.008));  // std error 0.0015
    }
}

TEST_CASE("a uniform value never rounds up to the excluded upper bound", "[random]") {
    // [1, 1 + 2^-23) lies between two adjacent floats: about half the draws round to 1 + 2^-23 in
    // float32, which must be pulled back below hi.
    Generator gen(8);
    const double hi = 1.0 + std::ldexp(1.0, -23);
    const Tensor t = uniform({2000}, 1.0, hi, gen, f32);
    for (std::size_t i = 0; i < t.numel(); ++i) REQUIRE(t.at(i) == 1.0);
    const Tensor d = uniform({2000}, 1.0, hi, gen, f64);
    for (std::size_t i = 0; i < d.numel(); ++i) {
        REQUIRE(d.at(i) >= 1.0);
        REQUIRE(d.at(i) < hi);
    }
}

TEST_CASE("randint is in range and unbiased", "[random]") {
    Generator gen(31);
    CHECK(gen.randint(1) == 0);
    // Six faces, 60k rolls: chi-square with 5 degrees of freedom stays below 20.5 (p = 0.001).
    std::vector<double> counts(6, 0);
    for (int i = 0; i < 60000; ++i) {
        const std::size_t k = gen.randint(6);
        REQUIRE(k < 6);
        counts[k] += 1;
    }
    double chi2 = 0;
    for (double c : counts) chi2 += (c - 10000) * (c - 10000) / 10000;
    CHECK(chi2 < 20.5);
    // n = 2/3 of 2^64: plain `next_u64() % n` would make the lower half of [0, n) twice as likely
    // as the upper (P(k < n/2) = 2/3); an unbiased draw gives 1/2.
    const std::size_t n = 0xAAAAAAAAAAAAAAAAull;
    int lower = 0;
    for (int i = 0; i < 20000; ++i) {
        const std::size_t k = gen.randint(n);
        REQUIRE(k < n);
        lower += k < n / 2;
    }
    CHECK(lower / 20000.0 == Approx(0.5).margin(0.015));  // std error 0.0035
    REQUIRE_THROWS_AS(gen.randint(0), ValueError);
    REQUIRE_THROWS_WITH(gen.randint(0), Contains("randint") && Contains("empty"));
}

TEST_CASE("state() and set_state() resume the exact stream, a pending normal included", "[random]") {
    Generator gen(99);
    for (int i = 0; i < 17; ++i) gen.next_u64();
    gen.normal();  // leaves the pair's second value cached
    const std::string saved = gen.state();
    std::vector<double> expect;
    for (int i = 0; i < 5; ++i) expect.push_back(gen.normal());
    for (int i = 0; i < 5; ++i) expect.push_back(gen.uniform());

    Generator other(1);
    other.set_state(saved);
    CHECK(other.initial_seed() == 99);
    for (int i = 0; i < 5; ++i) CHECK(other.normal() == expect[static_cast<std::size_t>(i)]);
    for (int i = 5; i < 10; ++i) CHECK(other.uniform() == expect[static_cast<std::size_t>(i)]);
    CHECK(other.state() == gen.state());

    // A bad string is refused and leaves the generator as it was.
    Generator g(4);
    const std::string before = g.state();
    REQUIRE_THROWS_AS(g.set_state("not a state"), ValueError);
    REQUIRE_THROWS_WITH(g.set_state("not a state"), Contains("set_state") && Contains("not a generator state"));
    REQUIRE_THROWS_WITH(g.set_state(saved.substr(0, saved.size() / 2)), Contains("truncated or corrupt"));
    REQUIRE_THROWS_WITH(g.set_state(saved + " 12"), Contains("unexpected text"));
    CHECK(g.state() == before);
}

TEST_CASE("the default generator is per thread and seeded by manual_seed", "[random]") {
    manual_seed(42);
    Generator ref(42);
    const Tensor a = rand({3, 4}, f64);
    CHECK(bitwise_equal<double>(a, rand({3, 4}, ref, f64)));
    CHECK(bitwise_equal<double>(randn({6}, f64), randn({6}, ref, f64)));
    CHECK(bitwise_equal<double>(uniform({6}, -1, 1, f64), uniform({6}, -1, 1, ref, f64)));

    // Another thread's seeding and drawing leave this thread's stream alone.
    manual_seed(42);
    Generator ref2(42);
    std::thread([] {
        manual_seed(7);
        (void)rand({100});
    }).join();
    CHECK(bitwise_equal<double>(rand({5}, f64), rand({5}, ref2, f64)));
}

TEST_CASE("uniform refuses bad bounds, naming them and the shape", "[random]") {
    Generator gen;
    REQUIRE_THROWS_AS(uniform({2, 3}, 1.0, 1.0, gen), ValueError);
    REQUIRE_THROWS_WITH(uniform({2, 3}, 2.0, 1.0, gen),
                        Contains("uniform") && Contains("[2, 1)") && Contains("[2, 3]"));
    REQUIRE_THROWS_WITH(uniform({4}, 0.0, INFINITY, gen), Contains("uniform") && Contains("finite"));
    REQUIRE_THROWS_WITH(uniform({4}, -1e308, 1e308, gen), Contains("overflows"));
}
