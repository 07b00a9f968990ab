/// \file
/// \brief Gradient checking against finite differences, as a library feature.
/// \ingroup tape
///
/// Gradient checking, a library feature. Compares the tape's gradients of a function of
/// float64 tensors with central finite differences, and on failure names the input, the element,
/// the analytic and numeric values and the worst error. Usable directly in REQUIRE(gradcheck(...)).
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup tape
/// @{

/// Options of gradcheck(): the mode, the finite-difference step and the tolerances (PyTorch's
/// defaults).
struct GradcheckOptions {
    /// What is compared.
    enum class Mode {
        full,              ///< the whole Jacobian, element by element (small inputs)
        random_direction,  ///< directional derivatives along random directions (large inputs, long unrolls)
    };
    Mode mode = Mode::full;  ///< full Jacobian or random directions
    double eps = 1e-6;   ///< central-difference step
    double atol = 1e-5;  ///< |analytic - numeric| <= atol + rtol * |numeric|
    double rtol = 1e-3;  ///< relative tolerance (see atol)
    int directions = 3;       ///< random_direction: directions tried per input
    std::uint64_t seed = 0;   ///< random_direction: generator seed
    /// Names for the inputs in failure messages; defaults to each tensor's name(), else "input i".
    /// (The {} lets callers use designated initialisers without -Wextra's missing-initializer warning.)
    std::vector<std::string> names{};
};

/// What gradcheck() found. Converts to bool (true when it passed), so `REQUIRE(gradcheck(...))`
/// works in a test, and prints its message with `<<`.
struct GradcheckResult {
    bool ok = true;  ///< whether every compared entry agreed
    std::string message;  ///< what failed and where; "gradcheck passed: ..." otherwise
    /// On failure: which input and element, both values. element is empty in random_direction mode,
    /// where direction says which of the random directions disagreed instead.
    std::string input;
    std::size_t input_index = 0;  ///< on failure: the position of that input in the list
    Shape element;  ///< on failure, full mode: the index of the input element
    Shape output_element;  ///< full mode: the output element whose row of the Jacobian disagrees
    std::size_t direction = 0;  ///< random_direction mode: index of the failing direction
    double analytic = 0.0;  ///< on failure: the tape's derivative
    double numeric = 0.0;   ///< on failure: the central difference
    double worst_error = 0.0;  ///< max over all compared entries of |analytic - numeric|
    std::size_t compared = 0;  ///< Jacobian entries (full) or directional derivatives (random) compared
    explicit operator bool() const { return ok; }  ///< ok
};
std::ostream& operator<<(std::ostream& os, const GradcheckResult& r);  ///< writes r.message

/// A function gradcheck() can check: float64 inputs to a tensor of any shape.
using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

/// Compares the tape's gradients of f with central differences. From examples/tape_basics.cpp:
///
/// \snippet tape_basics.cpp checking_gradients
///
/// f maps the inputs to a tensor of any shape. The inputs are copied into fresh float64 leaves that
/// require grad; f runs on its own tape (and under NoGrad for the finite differences), so the
/// caller's tensors and tapes are untouched, except that a float64 tensor that f captures from
/// outside and that requires grad receives gradient from the analytic pass (check such tensors with
/// the form below instead). float32 inputs are refused with a ValueError.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, GradcheckOptions options = {});

/// The form for functions that read their tensors directly, such as a model's parameters:
/// `gradcheck([&] { return loss(model(x)); }, model.parameters())`.
/// Each tensor must be a float64 leaf; during the check it requires grad and is perturbed in place
/// (restored exactly). Afterwards its requires_grad flag is as before and its gradient is cleared.
/// nn::gradcheck_module wraps this with the parameters' dotted names.
GradcheckResult gradcheck(const std::function<Tensor()>& f, const std::vector<Tensor>& tensors,
                          GradcheckOptions options = {});

/// @}
}  // namespace tapegrad
