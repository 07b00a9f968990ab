/// \file
/// \brief Random numbers that are the same on every platform, and random tensor factories.
/// \ingroup tape
///
/// Random numbers that are the same on every platform, and the random tensor factories.
/// Generator wraps std::mt19937_64 (whose output sequence the C++ standard fixes) with its own
/// uniform and normal transforms: std::uniform_real_distribution and std::normal_distribution are
/// implementation-defined, so the same seed would give different initialisations on other compilers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup tape
/// @{

/// A random number generator (std::mt19937_64) whose uniform, normal and integer draws are the
/// same on every platform, with a state that checkpoints save and restore exactly.
class Generator {
public:
    /// 5489 is std::mt19937_64's own default seed.
    explicit Generator(std::uint64_t seed = 5489);
    /// Restart the stream from `seed`, as if newly constructed.
    void manual_seed(std::uint64_t seed);
    std::uint64_t initial_seed() const { return seed_; }  ///< the seed last set

    std::uint64_t next_u64();  ///< the next 64 raw bits of the engine
    /// Uniform in [0, 1): the top 53 bits of one draw, so every representable multiple of 2^-53.
    double uniform();
    /// Standard normal, by Marsaglia's polar method: it needs only sqrt (exactly rounded by IEEE)
    /// and log, not sin/cos, so results agree across math libraries as far as log does. Values come
    /// in pairs; the second is kept for the next call (and is part of state()).
    double normal();
    /// Uniform integer in [0, n), without modulo bias. n == 0 is a ValueError.
    std::size_t randint(std::size_t n);

    /// The full state (engine words, seed and the cached normal) as text, and back: a checkpoint that
    /// saves state() resumes the exact stream after set_state(). A string that is not a state saved
    /// by this class is a ValueError and leaves the generator unchanged. The text is portable
    /// between builds that share a C++ standard library (it embeds the engine's stream format).
    std::string state() const;
    void set_state(const std::string& s);  ///< restores a state() (ValueError if it is not one)

private:
    std::mt19937_64 engine_;
    std::uint64_t seed_ = 5489;
    bool has_spare_ = false;  ///< the second normal of the last pair, not yet returned
    double spare_ = 0.0;
};

/// The calling thread's generator (each thread has its own, seeded 5489 at first use), used by every
/// function below that is not given a Generator.
Generator& default_generator();
/// Seed the calling thread's default generator.
void manual_seed(std::uint64_t seed);

/// Tensors of independent draws, filled in row-major order. float32 values are the float64 draws
/// rounded, so the same seed gives the same numbers (to precision) in either dtype; rounding never
/// lets a uniform value reach its upper bound.
Tensor rand(const Shape& shape, Generator& gen, DType dtype = default_dtype(), bool requires_grad = false);   ///< U[0, 1)
Tensor randn(const Shape& shape, Generator& gen, DType dtype = default_dtype(), bool requires_grad = false);  ///< N(0, 1)
/// U[lo, hi); lo < hi, both finite, else a ValueError.
Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype = default_dtype(),
               bool requires_grad = false);
Tensor rand(const Shape& shape, DType dtype = default_dtype(), bool requires_grad = false);  ///< U[0, 1), default_generator()
Tensor randn(const Shape& shape, DType dtype = default_dtype(), bool requires_grad = false);  ///< N(0, 1), default_generator()
/// U[lo, hi) from default_generator(); lo < hi, both finite, else a ValueError.
Tensor uniform(const Shape& shape, double lo, double hi, DType dtype = default_dtype(), bool requires_grad = false);

/// @}
}  // namespace tapegrad
