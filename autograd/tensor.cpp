// tapegrad: Tensor handles, factories and printing.
#include "tensor.hpp"

#include <cmath>
#include <ostream>
#include <sstream>

#include <xtensor/xbuilder.hpp>

#include "detail/op.hpp"
#include "ops.hpp"

namespace tapegrad {

using detail::get;
using detail::Node;

const char* dtype_name(DType dt) { return dt == DType::f64 ? "float64" : "float32"; }

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

namespace {
std::shared_ptr<Node> new_leaf(Array v, bool requires_grad) {
    auto n = std::make_shared<Node>();
    n->value = std::move(v);
    n->requires_grad = requires_grad;
    return n;
}
const Node& need(const std::shared_ptr<Node>& n, const char* what) {
    if (!n) throw UsageError(fmt::format("{}: the tensor is undefined (default-constructed)", what));
    return *n;
}
Node& need_mut(const std::shared_ptr<Node>& n, const char* what) {
    if (!n) throw UsageError(fmt::format("{}: the tensor is undefined (default-constructed)", what));
    return *n;
}
}  // namespace

Tensor::Tensor(xt::xarray<float> value, bool requires_grad)
    : node_(new_leaf(Array(std::move(value)), requires_grad)) {}
Tensor::Tensor(xt::xarray<double> value, bool requires_grad)
    : node_(new_leaf(Array(std::move(value)), requires_grad)) {}
Tensor::Tensor(Array value, bool requires_grad) : node_(new_leaf(std::move(value), requires_grad)) {}

Tensor Tensor::scalar(double v, DType dtype, bool requires_grad) {
    return full({}, v, dtype, requires_grad);
}

namespace {
template <class L>
Tensor from_list(const L& list, DType dtype, bool requires_grad) {
    xt::xarray<double> a = list;
    if (dtype == f64) return Tensor(std::move(a), requires_grad);
    return Tensor(xt::xarray<float>(xt::cast<float>(a)), requires_grad);
}
}  // namespace

Tensor Tensor::of(std::initializer_list<double> v, DType dtype, bool requires_grad) {
    return from_list(v, dtype, requires_grad);
}
Tensor Tensor::of(std::initializer_list<std::initializer_list<double>> v, DType dtype, bool requires_grad) {
    for (const auto& row : v)
        if (row.size() != v.begin()->size())
            throw ShapeError(fmt::format("Tensor::of: ragged nested list (rows of {} and {} elements)",
                                         v.begin()->size(), row.size()));
    return from_list(v, dtype, requires_grad);
}
Tensor Tensor::of(std::initializer_list<std::initializer_list<std::initializer_list<double>>> v, DType dtype,
                  bool requires_grad) {
    for (const auto& m : v) {
        if (m.size() != v.begin()->size())
            throw ShapeError("Tensor::of: ragged nested list (matrices with different row counts)");
        for (const auto& row : m)
            if (row.size() != v.begin()->begin()->size())
                throw ShapeError("Tensor::of: ragged nested list (rows with different lengths)");
    }
    return from_list(v, dtype, requires_grad);
}

DType Tensor::dtype() const {
    return need(node_, "dtype").value.index() == 1 ? DType::f64 : DType::f32;
}
Shape Tensor::shape() const { return detail::shape_of(need(node_, "shape").value); }
std::size_t Tensor::dim() const {
    return std::visit([](const auto& x) { return x.dimension(); }, need(node_, "dim").value);
}
std::size_t Tensor::size(long axis) const {
    const Shape s = shape();
    return s[detail::norm_axis("size", axis, s)];
}
std::size_t Tensor::numel() const {
    return std::visit([](const auto& x) { return x.size(); }, need(node_, "numel").value);
}

template <class T>
const xt::xarray<T>& Tensor::value() const& {
    const Node& n = need(node_, "value");
    if (n.value.index() != (std::is_same_v<T, double> ? 1u : 0u))
        throw DTypeError(fmt::format("value<{}>(): the tensor is {}", dtype_name(dtype_of<T>), dtype_name(dtype())));
    return get<T>(n.value);
}
template <class T>
xt::xarray<T>& Tensor::mutable_value() {
    Node& n = need_mut(node_, "mutable_value");
    if (n.value.index() != (std::is_same_v<T, double> ? 1u : 0u))
        throw DTypeError(
            fmt::format("mutable_value<{}>(): the tensor is {}", dtype_name(dtype_of<T>), dtype_name(dtype())));
    ++n.version;
    return get<T>(n.value);
}
// On a temporary: a copy, made before the temporary (perhaps the storage's last owner) ends.
template <class T>
xt::xarray<T> Tensor::value() const&& {
    return static_cast<const Tensor&>(*this).value<T>();
}
template const xt::xarray<float>& Tensor::value<float>() const&;
template const xt::xarray<double>& Tensor::value<double>() const&;
template xt::xarray<float> Tensor::value<float>() const&&;
template xt::xarray<double> Tensor::value<double>() const&&;
template xt::xarray<float>& Tensor::mutable_value<float>();
template xt::xarray<double>& Tensor::mutable_value<double>();

const Array& Tensor::array() const& { return need(node_, "array").value; }
Array Tensor::array() const&& { return need(node_, "array").value; }
Array& Tensor::mutable_array() {
    Node& n = need_mut(node_, "mutable_array");
    ++n.version;
    return n.value;
}

double Tensor::item() const {
    if (numel() != 1)
        throw ValueError(fmt::format("item: the tensor has shape {} ({} elements); item() needs exactly one",
                                     shape_str(shape()), numel()));
    return at(0);
}
double Tensor::at(std::size_t i) const {
    if (i >= numel())
        throw ValueError(fmt::format("at: flat index {} is out of range for shape {} ({} elements)", i,
                                     shape_str(shape()), numel()));
    return std::visit([i](const auto& x) { return static_cast<double>(x.data()[i]); }, array());
}

bool Tensor::has_grad() const { return need(node_, "has_grad").has_grad; }
template <class T>
const xt::xarray<T>& Tensor::grad_value() const& {
    const Node& n = need(node_, "grad_value");
    if (!n.has_grad)
        throw UsageError(fmt::format("grad_value: the tensor{} has no gradient (it does not require grad, "
                                     "backward has not reached it, or it is an intermediate without retain_grad)",
                                     n.name.empty() ? "" : " '" + n.name + "'"));
    if (n.grad.index() != (std::is_same_v<T, double> ? 1u : 0u))
        throw DTypeError(fmt::format("grad_value<{}>(): the tensor is {}", dtype_name(dtype_of<T>), dtype_name(dtype())));
    return get<T>(n.grad);
}
template <class T>
xt::xarray<T> Tensor::grad_value() const&& {
    return static_cast<const Tensor&>(*this).grad_value<T>();
}
template const xt::xarray<float>& Tensor::grad_value<float>() const&;
template const xt::xarray<double>& Tensor::grad_value<double>() const&;
template xt::xarray<float> Tensor::grad_value<float>() const&&;
template xt::xarray<double> Tensor::grad_value<double>() const&&;

Tensor Tensor::grad() const {
    const Node& n = need(node_, "grad");
    if (!n.has_grad) return Tensor();
    return Tensor(n.grad);
}
const Array* Tensor::grad_array() const {
    const Node& n = need(node_, "grad_array");
    return n.has_grad ? &n.grad : nullptr;
}
Array* Tensor::mutable_grad_array() {
    Node& n = need_mut(node_, "mutable_grad_array");
    return n.has_grad ? &n.grad : nullptr;
}
void Tensor::zero_grad() {
    Node& n = need_mut(node_, "zero_grad");
    n.has_grad = false;
    n.grad = Array();
}

bool Tensor::requires_grad() const { return need(node_, "requires_grad").requires_grad; }
Tensor& Tensor::set_requires_grad(bool on) {
    Node& n = need_mut(node_, "set_requires_grad");
    if (n.recorded)
        throw UsageError("set_requires_grad: only leaves (tensors not produced by a recorded op) can change "
                         "requires_grad; use detach() to get a leaf");
    n.requires_grad = on;
    return *this;
}
bool Tensor::is_leaf() const { return !need(node_, "is_leaf").recorded; }
Tensor& Tensor::retain_grad() {
    need_mut(node_, "retain_grad").retain = true;
    return *this;
}

const std::string& Tensor::name() const& { return need(node_, "name").name; }
std::string Tensor::name() const&& { return need(node_, "name").name; }
Tensor& Tensor::set_name(std::string name) {
    need_mut(node_, "set_name").name = std::move(name);
    return *this;
}

Tensor Tensor::detach() const {
    Tensor t(need(node_, "detach").value, false);
    t.node_->name = node_->name;
    return t;
}

Tensor Tensor::to(DType target) const {
    detail::check_defined("to", *this);
    const DType src = dtype();
    if (src == target) return *this;
    return detail::dispatch(target, [&]<class T>(T) {
        xt::xarray<T> y = detail::dispatch(src, [&]<class S>(S) { return xt::xarray<T>(xt::cast<T>(value<S>())); });
        return detail::result("to", std::move(y), {this}, [src](detail::BackwardCtx& c) {
            detail::dispatch(src, [&]<class S>(S) { c.accumulate<S>(0, xt::cast<S>(c.grad_out<T>())); });
        });
    });
}

// ---- factories ----------------------------------------------------------------------------------
namespace {
// The factories share this; op names the one the user called, for its error messages.
Tensor full_impl(const char* op, const Shape& shape, double value, DType dtype, bool requires_grad) {
    return detail::dispatch(dtype, [&]<class T>(T) {
        xt::xarray<T> a = detail::new_array<T>(op, shape);
        a.fill(static_cast<T>(value));
        return Tensor(std::move(a), requires_grad);
    });
}
}  // namespace
Tensor full(const Shape& shape, double value, DType dtype, bool requires_grad) {
    return full_impl("full", shape, value, dtype, requires_grad);
}
Tensor zeros(const Shape& shape, DType dtype, bool requires_grad) {
    return full_impl("zeros", shape, 0.0, dtype, requires_grad);
}
Tensor ones(const Shape& shape, DType dtype, bool requires_grad) {
    return full_impl("ones", shape, 1.0, dtype, requires_grad);
}
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) {
    detail::check_defined("full_like", t);
    return full(t.shape(), value, t.dtype());
}

namespace {
thread_local DType tls_default_dtype = f32;
}  // namespace

DType default_dtype() { return tls_default_dtype; }
DefaultDType::DefaultDType(DType dtype) : previous_(tls_default_dtype) { tls_default_dtype = dtype; }
DefaultDType::~DefaultDType() { tls_default_dtype = previous_; }
Tensor arange(double start, double stop, double step, DType dtype) {
    if (step == 0.0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
        throw ValueError(fmt::format("arange: start {}, stop {}, step {}: need finite values and a nonzero step",
                                     start, stop, step));
    const double n = std::ceil((stop - start) / step);
    // A count beyond 2^62 (or an infinite one, from a range wider than a double) cannot be converted
    // to size_t safely, let alone allocated: refuse it before the conversion.
    if (!(n <= 0x1p62))
        throw ValueError(fmt::format("arange: start {}, stop {}, step {}: {} elements is too many", start, stop,
                                     step, n));
    const std::size_t count = n > 0 ? static_cast<std::size_t>(n) : 0;
    return detail::dispatch(dtype, [&]<class T>(T) {
        xt::xarray<T> a = detail::new_array<T>("arange", {count});
        for (std::size_t i = 0; i < count; ++i) a(i) = static_cast<T>(start + step * static_cast<double>(i));
        return Tensor(std::move(a));
    });
}

// ---- printing -----------------------------------------------------------------------------------

std::string to_string(const Tensor& t) {
    if (!t.defined()) return "Tensor(undefined)";
    std::ostringstream os;
    os << "Tensor(shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype());
    if (t.requires_grad()) os << ", requires_grad";
    if (!t.name().empty()) os << ", name='" << t.name() << "'";
    os << ")\n";
    std::visit([&](const auto& x) { detail::print_values(os, x.data(), t.shape(), 0, 0); }, t.array());
    return os.str();
}
std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }

}  // namespace tapegrad
