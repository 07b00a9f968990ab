// tapegrad: the Tensor handle, its runtime dtype, and the library's error family.
// A Tensor is a cheap shared handle to a node: a value (float32 or float64 xtensor array), a
// gradient allocated on first accumulation, and the bookkeeping the tape needs. Kernels live in
// .cpp files; this header only pulls in xarray's container type so users can pass arrays in and out.
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

// ---- errors ---------------------------------------------------------------------------------
// Every error a user's input can cause is a tapegrad::Error; the message names the operation
// (and layer and time step where there is one) and the shapes or values involved.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
class ShapeError : public Error {  // shapes that do not fit the op
public:
    using Error::Error;
};
class DTypeError : public Error {  // mixing float32 with float64, or the wrong dtype asked for
public:
    using Error::Error;
};
class UsageError : public Error {  // engine misuse: backward twice, a dead tape, a missing gradient
public:
    using Error::Error;
};
class ValueError : public Error {  // an argument with the right type but a bad value
public:
    using Error::Error;
};
class FormatError : public Error {  // a file that is missing, truncated or not what it should be
public:
    using Error::Error;
};
class AnomalyError : public Error {  // anomaly mode (DetectAnomaly) found a NaN or Inf
public:
    using Error::Error;
};

// ---- dtype and shape ------------------------------------------------------------------------
enum class DType : std::uint8_t { f32, f64 };
inline constexpr DType f32 = DType::f32;
inline constexpr DType f64 = DType::f64;
const char* dtype_name(DType dt);  // "float32" / "float64"

// The dtype that factories (zeros, ones, full, arange, Tensor::scalar/of, rand/randn/uniform,
// one_hot, sequence_mask) and layers' parameters take when none is given: float32, unless a
// DefaultDType guard is alive on this thread. It is how one model code runs in float32 and is
// gradient-checked in float64: build and run it inside DefaultDType guard(f64). A dtype passed
// explicitly always wins, and tensors made from other tensors (zeros_like, x + 1.0,
// where(mask, x, -1e9)) take that tensor's dtype.
DType default_dtype();
// Sets this thread's default dtype until the guard is destroyed (guards nest; each restores what
// it found). Per thread, like the tape: other threads keep their own default.
class DefaultDType {
public:
    [[nodiscard]] explicit DefaultDType(DType dtype);
    ~DefaultDType();
    DefaultDType(const DefaultDType&) = delete;
    DefaultDType& operator=(const DefaultDType&) = delete;

private:
    DType previous_;
};

using Shape = std::vector<std::size_t>;
std::string shape_str(const Shape& s);  // "[2, 3]"

template <class T>
inline constexpr DType dtype_of = std::is_same_v<T, double> ? DType::f64 : DType::f32;

// A value or gradient: one xtensor array of the tensor's dtype.
using Array = std::variant<xt::xarray<float>, xt::xarray<double>>;

namespace detail {
struct Node;
struct TapeState;
}  // namespace detail

// ---- Tensor ---------------------------------------------------------------------------------
class Tensor {
public:
    Tensor() = default;  // an undefined tensor: defined() is false, every op refuses it
    explicit Tensor(xt::xarray<float> value, bool requires_grad = false);
    explicit Tensor(xt::xarray<double> value, bool requires_grad = false);
    explicit Tensor(Array value, bool requires_grad = false);
    // A scalar (0-d) tensor.
    static Tensor scalar(double v, DType dtype = default_dtype(), bool requires_grad = false);
    // From nested initializer lists: Tensor::of({{1, 2}, {3, 4}}); values are converted to dtype.
    // (A single element nested, {{x}}, is ambiguous in C++: write full({1, 1}, x) instead.)
    static Tensor of(std::initializer_list<double> v, DType dtype = default_dtype(), bool requires_grad = false);
    static Tensor of(std::initializer_list<std::initializer_list<double>> v, DType dtype = default_dtype(),
                     bool requires_grad = false);
    static Tensor of(std::initializer_list<std::initializer_list<std::initializer_list<double>>> v,
                     DType dtype = default_dtype(), bool requires_grad = false);

    bool defined() const { return node_ != nullptr; }
    DType dtype() const;
    Shape shape() const;
    std::size_t dim() const;
    std::size_t size(long axis) const;  // negative axes count from the end
    std::size_t numel() const;

    // The value as an xtensor array. T must match dtype() (DTypeError otherwise).
    // On a named tensor this is a reference into the tensor's storage. On a temporary
    // (`p.grad().value<float>()`, `(a + b).value<double>()`) it is a copy: the temporary may hold
    // the only reference to that storage, which it frees at the end of the full expression, so a
    // reference would dangle (see docs/design.md, "Reading a temporary tensor").
    template <class T>
    const xt::xarray<T>& value() const&;
    template <class T>
    xt::xarray<T> value() const&&;
    const Array& array() const&;
    Array array() const&&;
    // Mutable access for optimizers and initialisers. Bumps the version counter: a value changed
    // in place after an op saved it makes that op's backward refuse to run.
    template <class T>
    xt::xarray<T>& mutable_value();
    Array& mutable_array();
    // The single element of a one-element tensor, as double.
    double item() const;
    // Element at a flat (row-major) index, as double.
    double at(std::size_t flat_index) const;

    // Gradient: absent until something accumulates into it.
    bool has_grad() const;
    template <class T>
    const xt::xarray<T>& grad_value() const&;  // UsageError if absent
    template <class T>
    xt::xarray<T> grad_value() const&&;        // on a temporary: a copy, as value()
    // A snapshot of the gradient: a new constant Tensor holding a copy (undefined if absent). Unlike
    // LibTorch's grad(), it does not alias the gradient: writing to it leaves the gradient as it was
    // (change the gradient itself through mutable_grad_array()).
    Tensor grad() const;
    const Array* grad_array() const;          // nullptr if absent
    Array* mutable_grad_array();              // nullptr if absent
    void zero_grad();                         // drop the gradient (PyTorch's set_to_none)

    bool requires_grad() const;
    Tensor& set_requires_grad(bool on = true);  // only on leaves
    bool is_leaf() const;                       // not produced by a recorded op
    // Keep the gradient of an intermediate (non-leaf) value after backward, e.g. d loss / d h_t.
    Tensor& retain_grad();

    const std::string& name() const&;
    std::string name() const&&;
    Tensor& set_name(std::string name);

    // A new leaf sharing nothing with this tensor's history (the value is copied).
    Tensor detach() const;
    // The value in another dtype, differentiable (recorded as op "to"); the same tensor when it
    // already has that dtype.
    Tensor to(DType dtype) const;
    // Backward from this tensor on the tape that recorded it (see Tape::backward).
    void backward() const;
    void backward(const Tensor& grad_output) const;

    // Identity of the underlying node (two handles to one tensor compare equal).
    bool same(const Tensor& other) const { return node_ == other.node_; }

    // Internal: the engine and ops reach the node through these.
    explicit Tensor(std::shared_ptr<detail::Node> node) : node_(std::move(node)) {}
    const std::shared_ptr<detail::Node>& node() const { return node_; }

private:
    std::shared_ptr<detail::Node> node_;
};

// Factories. Shapes are given as {d0, d1, ...}.
Tensor zeros(const Shape& shape, DType dtype = default_dtype(), bool requires_grad = false);
Tensor ones(const Shape& shape, DType dtype = default_dtype(), bool requires_grad = false);
Tensor full(const Shape& shape, double value, DType dtype = default_dtype(), bool requires_grad = false);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);  // t's shape and dtype, every element value
// Evenly spaced values start, start+step, ... below stop (1-D).
Tensor arange(double start, double stop, double step = 1.0, DType dtype = default_dtype());

// Readable printing: shape, dtype, requires_grad, then the values (elided when large).
std::string to_string(const Tensor& t);
std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace tapegrad

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
