/// \file
/// \brief The Tensor handle, its runtime dtype, and the library's error family.
/// \ingroup tape
///
/// The Tensor handle, its runtime dtype, and the library's error family.
/// A Tensor is a cheap shared handle to a node: a value (float32 or float64 xtensor array), a
/// gradient allocated on first accumulation, and the bookkeeping the tape needs. Kernels live in
/// .cpp files; this header only pulls in xarray's container type so users can pass arrays in and out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <xtensor/xarray.hpp>

namespace tapegrad {

/// \addtogroup tape
/// @{

// ---- errors ---------------------------------------------------------------------------------
/// Every error a user's input can cause is a tapegrad::Error; the message names the operation
/// (and layer and time step where there is one) and the shapes or values involved.
/// \ingroup errors
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
/// Shapes that do not fit the op.
/// \ingroup errors
class ShapeError : public Error {
public:
    using Error::Error;
};
/// Mixing float32 with float64, or the wrong dtype asked for.
/// \ingroup errors
class DTypeError : public Error {
public:
    using Error::Error;
};
/// Engine misuse: backward twice, a dead tape, a missing gradient.
/// \ingroup errors
class UsageError : public Error {
public:
    using Error::Error;
};
/// An argument with the right type but a bad value.
/// \ingroup errors
class ValueError : public Error {
public:
    using Error::Error;
};
/// A file that is missing, truncated or not what it should be.
/// \ingroup errors
class FormatError : public Error {
public:
    using Error::Error;
};
/// Anomaly mode (DetectAnomaly) found a NaN or Inf.
/// \ingroup errors
class AnomalyError : public Error {
public:
    using Error::Error;
};

// ---- dtype and shape ------------------------------------------------------------------------
/// The element type of a Tensor, chosen at run time.
enum class DType : std::uint8_t {
    f32,  ///< float32 (float), the default
    f64   ///< float64 (double), for gradient checks
};
inline constexpr DType f32 = DType::f32;  ///< shorthand for DType::f32
inline constexpr DType f64 = DType::f64;  ///< shorthand for DType::f64
const char* dtype_name(DType dt);  ///< "float32" / "float64"

/// The dtype that factories (zeros, ones, full, arange, Tensor::scalar/of, rand/randn/uniform,
/// one_hot, sequence_mask) and layers' parameters take when none is given: float32, unless a
/// DefaultDType guard is alive on this thread. It is how one model code runs in float32 and is
/// gradient-checked in float64: build and run it inside DefaultDType guard(f64). A dtype passed
/// explicitly always wins, and tensors made from other tensors (zeros_like, x + 1.0,
/// where(mask, x, -1e9)) take that tensor's dtype.
DType default_dtype();
/// Sets this thread's default dtype until the guard is destroyed (guards nest; each restores what
/// it found). Per thread, like the tape: other threads keep their own default.
class DefaultDType {
public:
    /// Makes dtype this thread's default until the guard is destroyed.
    [[nodiscard]] explicit DefaultDType(DType dtype);
    ~DefaultDType();
    DefaultDType(const DefaultDType&) = delete;
    DefaultDType& operator=(const DefaultDType&) = delete;

private:
    DType previous_;
};

/// A tensor's shape: the extent of each axis, outermost first ({} for a 0-d scalar).
using Shape = std::vector<std::size_t>;
std::string shape_str(const Shape& s);  ///< "[2, 3]"

/// The DType of the scalar type T: f64 for double, f32 for float.
template <class T>
inline constexpr DType dtype_of = std::is_same_v<T, double> ? DType::f64 : DType::f32;

/// A value or gradient: one xtensor array of the tensor's dtype.
using Array = std::variant<xt::xarray<float>, xt::xarray<double>>;

namespace detail {
struct Node;
struct TapeState;
}  // namespace detail

// ---- Tensor ---------------------------------------------------------------------------------
/// A handle to a float32 or float64 array, its gradient and its place on the tape. Copying a
/// Tensor copies the handle, not the values: both handles see the same value and gradient. An op
/// on tensors that require gradients, run while a Tape is active, is recorded on it;
/// `tape.backward(loss)` then fills the gradients of the leaves. Tensors print with
/// `operator<<`, to_string() and fmt (`fmt::print("{}", t)`).
///
/// \snippet tape_basics.cpp record_and_backward
///
/// Reading a value of the wrong dtype is a DTypeError; reading an absent gradient
/// (grad_value()) is a UsageError; any op on an undefined tensor throws.
class Tensor {
public:
    Tensor() = default;  ///< an undefined tensor: defined() is false, every op refuses it
    /// A leaf holding a float32 array (moved in).
    explicit Tensor(xt::xarray<float> value, bool requires_grad = false);
    /// A leaf holding a float64 array (moved in).
    explicit Tensor(xt::xarray<double> value, bool requires_grad = false);
    /// A leaf holding either array; the dtype is the array's.
    explicit Tensor(Array value, bool requires_grad = false);
    /// A scalar (0-d) tensor.
    static Tensor scalar(double v, DType dtype = default_dtype(), bool requires_grad = false);
    /// From nested initializer lists: Tensor::of({{1, 2}, {3, 4}}); values are converted to dtype.
    /// (A single element nested, {{x}}, is ambiguous in C++: write full({1, 1}, x) instead.)
    static Tensor of(std::initializer_list<double> v, DType dtype = default_dtype(), bool requires_grad = false);
    /// A 2-D tensor from rows of equal length (ValueError otherwise).
    static Tensor of(std::initializer_list<std::initializer_list<double>> v, DType dtype = default_dtype(),
                     bool requires_grad = false);
    /// A 3-D tensor from nested lists of equal lengths (ValueError otherwise).
    static Tensor of(std::initializer_list<std::initializer_list<std::initializer_list<double>>> v,
                     DType dtype = default_dtype(), bool requires_grad = false);

    bool defined() const { return node_ != nullptr; }  ///< false for a default-constructed Tensor
    DType dtype() const;  ///< float32 or float64
    Shape shape() const;  ///< the extent of each axis
    std::size_t dim() const;  ///< the number of axes (0 for a scalar)
    std::size_t size(long axis) const;  ///< negative axes count from the end
    std::size_t numel() const;  ///< the number of elements

    /// The value as an xtensor array. T must match dtype() (DTypeError otherwise).
    /// On a named tensor this is a reference into the tensor's storage. On a temporary
    /// (`p.grad().value<float>()`, `(a + b).value<double>()`) it is a copy: the temporary may hold
    /// the only reference to that storage, which it frees at the end of the full expression, so a
    /// reference would dangle (see docs/design.md, "Reading a temporary tensor").
    template <class T>
    const xt::xarray<T>& value() const&;
    template <class T>
    xt::xarray<T> value() const&&;  ///< on a temporary: a copy (see above)
    const Array& array() const&;  ///< the value as the variant of both dtypes
    Array array() const&&;  ///< on a temporary: a copy
    /// Mutable access for optimizers and initialisers. Bumps the version counter: a value changed
    /// in place after an op saved it makes that op's backward refuse to run.
    template <class T>
    xt::xarray<T>& mutable_value();
    Array& mutable_array();  ///< as mutable_value(), for either dtype
    /// The single element of a one-element tensor, as double.
    double item() const;
    /// Element at a flat (row-major) index, as double.
    double at(std::size_t flat_index) const;

    /// Gradient: absent until something accumulates into it.
    bool has_grad() const;
    template <class T>
    const xt::xarray<T>& grad_value() const&;  ///< UsageError if absent
    template <class T>
    xt::xarray<T> grad_value() const&&;        ///< on a temporary: a copy, as value()
    /// A snapshot of the gradient: a new constant Tensor holding a copy (undefined if absent). Unlike
    /// LibTorch's grad(), it does not alias the gradient: writing to it leaves the gradient as it was
    /// (change the gradient itself through mutable_grad_array()).
    Tensor grad() const;
    const Array* grad_array() const;          ///< nullptr if absent
    Array* mutable_grad_array();              ///< nullptr if absent
    void zero_grad();                         ///< drop the gradient (PyTorch's set_to_none)

    bool requires_grad() const;  ///< whether ops record it and backward computes its gradient
    Tensor& set_requires_grad(bool on = true);  ///< only on leaves
    bool is_leaf() const;                       ///< not produced by a recorded op
    /// Keep the gradient of an intermediate (non-leaf) value after backward, e.g. d loss / d h_t.
    Tensor& retain_grad();

    /// The name given with set_name() (parameters get theirs from their module), used in error
    /// and gradcheck messages; empty if none.
    const std::string& name() const&;
    std::string name() const&&;  ///< on a temporary: a copy
    Tensor& set_name(std::string name);  ///< names the tensor; returns *this

    /// A new leaf sharing nothing with this tensor's history (the value is copied).
    Tensor detach() const;
    /// The value in another dtype, differentiable (recorded as op "to"); the same tensor when it
    /// already has that dtype.
    Tensor to(DType dtype) const;
    /// Backward from this tensor on the tape that recorded it (see Tape::backward).
    void backward() const;
    /// Backward seeded with grad_output (of this tensor's shape and dtype) instead of 1.
    void backward(const Tensor& grad_output) const;

    /// Identity of the underlying node (two handles to one tensor compare equal).
    bool same(const Tensor& other) const { return node_ == other.node_; }

    /// Internal: the engine and ops reach the node through these.
    explicit Tensor(std::shared_ptr<detail::Node> node) : node_(std::move(node)) {}
    const std::shared_ptr<detail::Node>& node() const { return node_; }  ///< internal: the node

private:
    std::shared_ptr<detail::Node> node_;
};

/// Every element 0. Factories take shapes as {d0, d1, ...}; a dtype not given is default_dtype().
Tensor zeros(const Shape& shape, DType dtype = default_dtype(), bool requires_grad = false);
Tensor ones(const Shape& shape, DType dtype = default_dtype(), bool requires_grad = false);  ///< every element 1
/// Every element value.
Tensor full(const Shape& shape, double value, DType dtype = default_dtype(), bool requires_grad = false);
Tensor zeros_like(const Tensor& t);  ///< t's shape and dtype, every element 0
Tensor ones_like(const Tensor& t);  ///< t's shape and dtype, every element 1
Tensor full_like(const Tensor& t, double value);  ///< t's shape and dtype, every element value
/// Evenly spaced values start, start+step, ... below stop (1-D).
Tensor arange(double start, double stop, double step = 1.0, DType dtype = default_dtype());

/// Readable printing: shape, dtype, requires_grad, then the values (elided when large).
std::string to_string(const Tensor& t);
std::ostream& operator<<(std::ostream& os, const Tensor& t);  ///< writes to_string(t)

/// @}
}  // namespace tapegrad

/// \cond
// fmt support: fmt::print("{}", t) prints to_string(t), and a DType prints as its name.
template <>
struct fmt::formatter<tapegrad::Tensor> : fmt::formatter<std::string_view> {
    template <class Ctx>
    auto format(const tapegrad::Tensor& t, Ctx& ctx) const {
        const std::string s = tapegrad::to_string(t);
        return fmt::formatter<std::string_view>::format(std::string_view(s), ctx);
    }
};
template <>
struct fmt::formatter<tapegrad::DType> : fmt::formatter<std::string_view> {
    template <class Ctx>
    auto format(tapegrad::DType d, Ctx& ctx) const {
        return fmt::formatter<std::string_view>::format(tapegrad::dtype_name(d), ctx);
    }
};
/// \endcond
