// tapegrad::nn: Sequential, ModuleList, ModuleDict and Functional: lookups with errors that name
// the container, and Sequential's forward, which says which module an error came from.
#include "containers.hpp"

#include <cstdlib>
#include <memory>

#include <fmt/format.h>
#if defined(__GNUG__)
#include <cxxabi.h>
#endif

namespace tapegrad::nn {

namespace detail {
namespace {
std::string demangle(const char* name) {
#if defined(__GNUG__)
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
    if (status == 0 && out) return out.get();
#endif
    return name;
}

std::string describe(const Module& m) {
    const std::string extra = m.extra_repr();
    return m.type_name() + "(" + extra + ")";
}
}  // namespace

void throw_out_of_range(const std::string& container, std::size_t index, std::size_t size) {
    throw ValueError(fmt::format("{}: index {} is out of range: it holds {} module{}", container, index, size,
                                 size == 1 ? "" : "s"));
}

void throw_wrong_type(const std::string& container, const std::string& which, const Module& m,
                      const std::type_info& wanted) {
    throw ValueError(fmt::format("{}: {} is a {} ({}), not a {}", container, which, demangle(typeid(m).name()),
                                 describe(m), demangle(wanted.name())));
}

void check_entry_name(const std::string& container, const char* noun, const Module& self, const std::string& name) {
    if (name.empty()) throw ValueError(fmt::format("{}: a {} must not be empty", container, noun));
    if (name.find('.') != std::string::npos)
        throw ValueError(fmt::format("{}: {} '{}' holds a dot; dots separate the levels of parameter names "
                                     "(as in 'encoder.rnn.weight_ih_l0'), so a {} cannot hold one",
                                     container, noun, name, noun));
    std::vector<std::string> taken;
    for (const auto& [n, m] : self.named_children()) taken.push_back(n);
    for (const std::string& n : taken)
        if (n == name)
            throw ValueError(fmt::format("{}: {} '{}' is already taken ({}s taken: {})", container, noun, name, noun,
                                         fmt::join(taken, ", ")));
}
}  // namespace detail

// ---- Functional ---------------------------------------------------------------------------------
Functional::Functional(Fn fn, std::string name) : fn_(std::move(fn)), name_(std::move(name)) {
    if (!fn_) throw ValueError(fmt::format("Functional '{}': the function is empty", name_));
}

Tensor Functional::forward(const Tensor& x) const { return fn_(x); }

// ---- Sequential ---------------------------------------------------------------------------------
namespace {
// Rethrows the error being handled as the same type of tapegrad::Error, with `where` in front, so a
// user can still catch a ShapeError by type and learn which module of a chain refused the input.
[[noreturn]] void rethrow_with(const std::string& where) {
    try {
        throw;
    } catch (const ShapeError& e) {
        throw ShapeError(where + e.what());
    } catch (const DTypeError& e) {
        throw DTypeError(where + e.what());
    } catch (const UsageError& e) {
        throw UsageError(where + e.what());
    } catch (const ValueError& e) {
        throw ValueError(where + e.what());
    } catch (const FormatError& e) {
        throw FormatError(where + e.what());
    } catch (const AnomalyError& e) {
        throw AnomalyError(where + e.what());
    } catch (const Error& e) {
        throw Error(where + e.what());
    }
}
}  // namespace

std::shared_ptr<Functional> Sequential::push_back(std::string name, Functional::Fn fn) {
    return push_back(std::move(name), std::make_shared<Functional>(std::move(fn)));
}
std::shared_ptr<Functional> Sequential::push_back(Functional::Fn fn) {
    return push_back(std::make_shared<Functional>(std::move(fn)));
}

Tensor Sequential::forward(const Tensor& x) const {
    if (modules_.empty())
        throw UsageError("Sequential: forward of an empty Sequential; push_back modules first");
    Tensor y = x;
    for (std::size_t i = 0; i < calls_.size(); ++i) {
        try {
            y = calls_[i](y);
        } catch (const Error&) {
            rethrow_with(fmt::format("Sequential: module '{}' ({}): ", names_[i], modules_[i]->type_name()));
        }
    }
    return y;
}

Module& Sequential::operator[](std::size_t i) const { return *ptr(i); }
std::shared_ptr<Module> Sequential::ptr(std::size_t i) const {
    if (i >= modules_.size()) detail::throw_out_of_range(type_name(), i, modules_.size());
    return modules_[i];
}

// ---- ModuleList ---------------------------------------------------------------------------------
Module& ModuleList::operator[](std::size_t i) const { return *ptr(i); }
std::shared_ptr<Module> ModuleList::ptr(std::size_t i) const {
    if (i >= modules_.size()) detail::throw_out_of_range(type_name(), i, modules_.size());
    return modules_[i];
}

// ---- ModuleDict ---------------------------------------------------------------------------------
bool ModuleDict::contains(const std::string& key) const {
    for (const auto& [k, m] : items_)
        if (k == key) return true;
    return false;
}

std::vector<std::string> ModuleDict::keys() const {
    std::vector<std::string> out;
    for (const auto& [k, m] : items_) out.push_back(k);
    return out;
}

Module& ModuleDict::operator[](const std::string& key) const { return *ptr(key); }
std::shared_ptr<Module> ModuleDict::ptr(const std::string& key) const {
    for (const auto& [k, m] : items_)
        if (k == key) return m;
    throw ValueError(fmt::format("{}: no module under key '{}'; the keys are: {}", type_name(), key,
                                 items_.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(keys(), ", "))));
}

}  // namespace tapegrad::nn
