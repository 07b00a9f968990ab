/// \file
/// \brief In-place initialisers for parameters, as torch.nn.init.
/// \ingroup modules
///
/// In-place initialisers for parameters, with torch.nn.init's names, gains and
/// fan conventions, so a model set up as in a PyTorch recipe starts from the same distributions.
/// Random ones draw from a Generator (the thread's default unless given), so a seed reproduces the
/// weights; float32 values are the float64 draws rounded. Each writes through mutable_value, so a
/// tape that saved the old value refuses to backpropagate through it. Each returns its tensor.
/// From tests/test_libtorch_guide.cpp:
///
/// \snippet test_libtorch_guide.cpp init_examples
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "../../autograd/random.hpp"
#include "../../autograd/tensor.hpp"

namespace tapegrad::nn::init {

/// \addtogroup modules
/// @{

/// PyTorch's fans: for a [out, in, k1, k2, ...] weight, fan_in = in * k1 * k2 * ... and
/// fan_out = out * k1 * k2 * ...; a 2-D [out, in] weight has fan_in = in, fan_out = out. Fewer than
/// 2 dimensions is a ShapeError.
struct Fans {
    std::size_t fan_in = 0;   ///< in * k1 * k2 * ...
    std::size_t fan_out = 0;  ///< out * k1 * k2 * ...
};
/// The fans of a weight of this shape (see Fans); fewer than 2 dimensions is a ShapeError.
Fans calculate_fan_in_and_fan_out(const Shape& shape);
Fans calculate_fan_in_and_fan_out(const Tensor& t);  ///< the fans of t's shape

/// The recommended gain for a nonlinearity, as torch.nn.init.calculate_gain: 1 for "linear",
/// "sigmoid" and the conv names ("conv1d" ... "conv_transpose3d"); 5/3 for "tanh"; sqrt(2) for
/// "relu"; sqrt(2 / (1 + slope^2)) for "leaky_relu" (slope = param, 0.01 when not given); 3/4 for
/// "selu". Any other name, or a non-finite param, is a ValueError.
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = std::nullopt);

/// U[a, b) (every element a when a == b); a > b or a non-finite bound is a ValueError.
Tensor uniform_(Tensor t, double a = 0.0, double b = 1.0, Generator& gen = default_generator());
/// N(mean, std^2); std < 0 or a non-finite argument is a ValueError.
Tensor normal_(Tensor t, double mean = 0.0, double std = 1.0, Generator& gen = default_generator());
Tensor constant_(Tensor t, double value);  ///< a non-finite value is a ValueError
Tensor zeros_(Tensor t);  ///< every element 0
Tensor ones_(Tensor t);  ///< every element 1
/// The identity in a 2-D tensor (ones on the main diagonal of a [n, m] matrix); other ranks: ShapeError.
Tensor eye_(Tensor t);

/// Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)), or N(0, std^2) with
/// std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_uniform_(Tensor t, double gain = 1.0, Generator& gen = default_generator());
/// Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal_(Tensor t, double gain = 1.0, Generator& gen = default_generator());

/// Which fan Kaiming initialisation scales by.
enum class FanMode {
    fan_in,  ///< keeps the variance of the forward pass
    fan_out  ///< keeps the variance of the backward pass
};
/// Options of kaiming_uniform_() and kaiming_normal_().
struct KaimingOptions {
    double a = 0.0;                           ///< the negative slope, for "leaky_relu"
    FanMode mode = FanMode::fan_in;           ///< fan_in keeps the forward pass's variance, fan_out the backward's
    std::string nonlinearity = "leaky_relu";  ///< a name calculate_gain knows
};
/// He: with gain = calculate_gain(nonlinearity, a) and std = gain / sqrt(fan), U(-b, b) with
/// b = sqrt(3) * std, or N(0, std^2).
Tensor kaiming_uniform_(Tensor t, const KaimingOptions& options = {}, Generator& gen = default_generator());
/// He normal: N(0, std^2) with std = calculate_gain(nonlinearity, a) / sqrt(fan).
Tensor kaiming_normal_(Tensor t, const KaimingOptions& options = {}, Generator& gen = default_generator());

/// A (semi-)orthogonal matrix times gain, as PyTorch makes it: the tensor is seen as [rows, cols]
/// (rows = size(0), the other dimensions flattened); a rows x cols standard normal matrix (its
/// transpose when rows < cols) is factored A = QR and Q's columns are multiplied by the signs of R's
/// diagonal, which makes Q unique. rows >= cols gives Q^T Q = I, rows < cols gives Q Q^T = I.
Tensor orthogonal_(Tensor t, double gain = 1.0, Generator& gen = default_generator());

/// @}
}  // namespace tapegrad::nn::init
