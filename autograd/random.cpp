// tapegrad: the portable Generator and the random tensor factories (see random.hpp).
// Every transform from engine bits to numbers is written here, in plain arithmetic, so that one
// seed gives one stream of numbers whatever the compiler and standard library.
#include "random.hpp"

#include <bit>
#include <cmath>
#include <limits>
#include <sstream>

#include "detail/op.hpp"

namespace tapegrad {

namespace {
constexpr const char* kStateTag = "tapegrad.Generator.v1";
}  // namespace

Generator::Generator(std::uint64_t seed) { manual_seed(seed); }

void Generator::manual_seed(std::uint64_t seed) {
    engine_.seed(seed);
    seed_ = seed;
    has_spare_ = false;
    spare_ = 0.0;
}

std::uint64_t Generator::next_u64() { return engine_(); }

double Generator::uniform() {
    // 53 bits fill a double's mantissa exactly: k * 2^-53 for k in [0, 2^53).
    return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

double Generator::normal() {
    if (has_spare_) {
        has_spare_ = false;
        return spare_;
    }
    double u, v, s;
    do {  // a point uniform in the unit disc, origin excluded (accepted with probability pi/4)
        u = 2.0 * uniform() - 1.0;
        v = 2.0 * uniform() - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double m = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * m;
    has_spare_ = true;
    return u * m;
}

std::size_t Generator::randint(std::size_t n) {
    if (n == 0) throw ValueError("Generator::randint: n is 0; the range [0, n) is empty");
    // Reject the lowest (2^64 mod n) values so that the rest split evenly into n residues.
    const std::uint64_t un = n;
    const std::uint64_t threshold = (0 - un) % un;
    for (;;) {
        const std::uint64_t r = next_u64();
        if (r >= threshold) return static_cast<std::size_t>(r % un);
    }
}

std::string Generator::state() const {
    std::ostringstream os;
    // The cached normal is stored by its bits: a decimal round trip could change it.
    os << kStateTag << ' ' << seed_ << ' ' << (has_spare_ ? 1 : 0) << ' ' << std::bit_cast<std::uint64_t>(spare_)
       << ' ' << engine_;
    return os.str();
}

void Generator::set_state(const std::string& s) {
    std::istringstream is(s);
    std::string tag;
    std::uint64_t seed = 0, spare_bits = 0;
    int has_spare = -1;
    std::mt19937_64 engine;
    is >> tag;
    if (tag != kStateTag)
        throw ValueError(fmt::format("Generator::set_state: not a generator state (expected it to start with '{}', "
                                     "got '{}')",
                                     kStateTag, tag.substr(0, 40)));
    is >> seed >> has_spare >> spare_bits >> engine;
    if (!is || (has_spare != 0 && has_spare != 1))
        throw ValueError(fmt::format("Generator::set_state: the state string ({} characters) is truncated or "
                                     "corrupt; pass a string returned by Generator::state()",
                                     s.size()));
    is >> std::ws;
    if (!is.eof())
        throw ValueError(fmt::format("Generator::set_state: unexpected text after the state at character {}",
                                     static_cast<long long>(is.tellg())));
    engine_ = engine;
    seed_ = seed;
    has_spare_ = has_spare == 1;
    spare_ = std::bit_cast<double>(spare_bits);
}

Generator& default_generator() {
    thread_local Generator gen;
    return gen;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

namespace {
// Fill a new tensor with draw() (a double per element), rounded to the dtype.
template <class Draw>
Tensor fill_random(const char* op, const Shape& shape, DType dtype, bool requires_grad, Draw&& draw) {
    return detail::dispatch(dtype, [&]<class T>(T) {
        xt::xarray<T> v = detail::new_array<T>(op, shape);
        T* p = v.data();
        for (std::size_t i = 0; i < v.size(); ++i) p[i] = static_cast<T>(draw());
        return Tensor(std::move(v), requires_grad);
    });
}
// Largest value of T below hi: rounding a draw in [lo, hi) to T (or the lo + (hi - lo) u product
// itself) may land on hi, which the half-open interval excludes.
template <class T>
T below(double hi) {
    const T h = static_cast<T>(hi);
    return static_cast<double>(h) < hi ? h : std::nextafter(h, -std::numeric_limits<T>::infinity());
}
}  // namespace

Tensor rand(const Shape& shape, Generator& gen, DType dtype, bool requires_grad) {
    return uniform(shape, 0.0, 1.0, gen, dtype, requires_grad);
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, bool requires_grad) {
    return fill_random("randn", shape, dtype, requires_grad, [&] { return gen.normal(); });
}

Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype, bool requires_grad) {
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
        throw ValueError(fmt::format("uniform: bounds [{}, {}) for shape {}: need finite lo < hi", lo, hi,
                                     shape_str(shape)));
    const double width = hi - lo;
    if (!std::isfinite(width))
        throw ValueError(fmt::format("uniform: bounds [{}, {}) for shape {}: the width hi - lo overflows", lo, hi,
                                     shape_str(shape)));
    return detail::dispatch(dtype, [&]<class T>(T) {
        const T top = below<T>(hi);
        xt::xarray<T> v = detail::new_array<T>("uniform", shape);
        T* p = v.data();
        for (std::size_t i = 0; i < v.size(); ++i) {
            const T x = static_cast<T>(lo + width * gen.uniform());
            p[i] = x > top ? top : x;
        }
        return Tensor(std::move(v), requires_grad);
    });
}

Tensor rand(const Shape& shape, DType dtype, bool requires_grad) {
    return rand(shape, default_generator(), dtype, requires_grad);
}
Tensor randn(const Shape& shape, DType dtype, bool requires_grad) {
    return randn(shape, default_generator(), dtype, requires_grad);
}
Tensor uniform(const Shape& shape, double lo, double hi, DType dtype, bool requires_grad) {
    return uniform(shape, lo, hi, default_generator(), dtype, requires_grad);
}

}  // namespace tapegrad
