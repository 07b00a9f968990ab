/// \file
/// \brief Containers of modules: Sequential, ModuleList and ModuleDict.
/// \ingroup modules
///
/// Containers of modules, as in LibTorch and PyTorch. Sequential chains modules that
/// take and return one Tensor; ModuleList holds modules by index; ModuleDict by key, in insertion
/// order. Each owns its modules and registers them under their index ("0", "1", ...) or key, so
/// parameter names are PyTorch's ("0.weight", "encoder.rnn.weight_ih_l0") and named_parameters,
/// state_dict, save/load, train/eval, to(dtype) and summary see through them.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "module.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// A module Sequential can chain: called with one Tensor, it returns one Tensor. Linear, RNNCell and
/// GRUCell (with their default zero state), Functional and Sequential itself are; RNN, LSTM and GRU,
/// whose results hold the final states too, are not (wrap them in a module of your own).
template <class M>
concept TensorModule = std::derived_from<M, Module> && requires(M& m, const Tensor& x) {
    { m(x) } -> std::convertible_to<Tensor>;
};

/// A module without parameters around a function of one Tensor, for the activations of a Sequential:
/// Functional(tapegrad::tanh, "Tanh"). The name is what summary() prints (LibTorch's Functional).
class Functional : public Module {
public:
    using Fn = std::function<Tensor(const Tensor&)>;  ///< a function of one Tensor
    /// Wraps fn; name is its type_name().
    explicit Functional(Fn fn, std::string name = "Functional");
    Tensor forward(const Tensor& x) const;  ///< fn(x)
    Tensor operator()(const Tensor& x) const { return forward(x); }  ///< forward(x)
    std::string type_name() const override { return name_; }  ///< the name given

private:
    Fn fn_;
    std::string name_;
};

namespace detail {
/// The errors the containers share; `container` names the container in the message.
[[noreturn]] void throw_out_of_range(const std::string& container, std::size_t index, std::size_t size);
[[noreturn]] void throw_wrong_type(const std::string& container, const std::string& which, const Module& m,
                                   const std::type_info& wanted);
/// A name for a container's entry ("name" or "key"): non-empty, no dot, not taken (a ValueError
/// naming the container).
void check_entry_name(const std::string& container, const char* noun, const Module& self, const std::string& name);
}  // namespace detail

/// A chain: forward(x) runs each module on the output of the one before, in order.
/// Modules are given by value (moved into a module the Sequential owns), as a std::shared_ptr (shared
/// with the caller), or as a plain function of one Tensor (wrapped in a Functional). Each is
/// registered under its index as a string, or under the name given: push_back("fc", Linear(3, 4)).
/// A name that is empty, holds a dot or is taken is a ValueError.
///
/// The three containers (from tests/test_libtorch_guide.cpp):
/// \snippet test_libtorch_guide.cpp container_examples
class Sequential : public Module {
public:
    Sequential() = default;  ///< empty; forward() refuses to run until a module is added
    /// The modules in order, each as push_back(module) would take it.
    template <class... Ms>
        requires(sizeof...(Ms) > 0) &&
                (!(sizeof...(Ms) == 1 && (std::same_as<std::remove_cvref_t<Ms>, Sequential> && ...)))
    explicit Sequential(Ms&&... modules) {
        (push_back(std::forward<Ms>(modules)), ...);
    }

    /// Appends a shared module under name; returns it.
    template <TensorModule M>
    std::shared_ptr<M> push_back(std::string name, std::shared_ptr<M> m) {
        detail::check_entry_name(type_name(), "name", *this, name);
        register_module(name, m);
        M* typed = m.get();
        calls_.emplace_back([typed](const Tensor& x) -> Tensor { return (*typed)(x); });
        names_.push_back(std::move(name));
        modules_.push_back(m);
        return m;
    }
    /// Appends a shared module under its index; returns it.
    template <TensorModule M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        return push_back(std::to_string(modules_.size()), std::move(m));
    }
    /// Appends a module moved into one the Sequential owns, under name; returns it.
    template <class M>
        requires TensorModule<M> && (!std::is_lvalue_reference_v<M>)
    std::shared_ptr<M> push_back(std::string name, M&& m) {
        return push_back(std::move(name), std::make_shared<M>(std::move(m)));
    }
    /// Appends a module moved into one the Sequential owns, under its index; returns it.
    template <class M>
        requires TensorModule<M> && (!std::is_lvalue_reference_v<M>)
    std::shared_ptr<M> push_back(M&& m) {
        return push_back(std::make_shared<M>(std::move(m)));
    }
    /// Appends a function of one Tensor, wrapped in a Functional, under name.
    std::shared_ptr<Functional> push_back(std::string name, Functional::Fn fn);
    /// Appends a function of one Tensor, wrapped in a Functional, under its index.
    std::shared_ptr<Functional> push_back(Functional::Fn fn);

    /// x through every module in turn. An error in a module is rethrown as the same type, its
    /// message prefixed with the module's name and type. An empty Sequential is a UsageError.
    Tensor forward(const Tensor& x) const;
    Tensor operator()(const Tensor& x) const { return forward(x); }  ///< forward(x)

    std::size_t size() const { return modules_.size(); }  ///< the number of modules
    bool is_empty() const { return modules_.empty(); }  ///< whether there are none
    /// The module at index i; an index out of range is a ValueError.
    Module& operator[](std::size_t i) const;
    std::shared_ptr<Module> ptr(std::size_t i) const;  ///< the module at index i, shared
    /// The module at index i as an M; a ValueError when it is of another type.
    template <class M>
    M& at(std::size_t i) const {
        return *ptr<M>(i);
    }
    /// The module at index i as a shared M; a ValueError when out of range or of another type.
    template <class M>
    std::shared_ptr<M> ptr(std::size_t i) const {
        std::shared_ptr<Module> m = ptr(i);
        if (auto typed = std::dynamic_pointer_cast<M>(m)) return typed;
        detail::throw_wrong_type(type_name(), "module " + std::to_string(i), *m, typeid(M));
    }
    auto begin() const { return modules_.begin(); }  ///< iterates the modules (shared pointers)
    auto end() const { return modules_.end(); }  ///< the end of the modules

    std::string type_name() const override { return "Sequential"; }  ///< "Sequential"

private:
    std::vector<std::shared_ptr<Module>> modules_;
    std::vector<std::string> names_;
    std::vector<std::function<Tensor(const Tensor&)>> calls_;
};

/// Modules by index, registered as "0", "1", ...; no forward of its own (LibTorch's ModuleList).
/// Sequential's example shows one.
class ModuleList : public Module {
public:
    ModuleList() = default;  ///< empty
    /// The modules in order, each as push_back(module) would take it.
    template <class... Ms>
        requires(sizeof...(Ms) > 0) &&
                (!(sizeof...(Ms) == 1 && (std::same_as<std::remove_cvref_t<Ms>, ModuleList> && ...)))
    explicit ModuleList(Ms&&... modules) {
        (push_back(std::forward<Ms>(modules)), ...);
    }

    /// Appends a shared module under its index; returns it.
    template <class M>
        requires std::derived_from<M, Module>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        register_module(std::to_string(modules_.size()), m);
        modules_.push_back(m);
        return m;
    }
    /// Appends a module moved into one the list owns; returns it.
    template <class M>
        requires std::derived_from<M, Module> && (!std::is_lvalue_reference_v<M>)
    std::shared_ptr<M> push_back(M&& m) {
        return push_back(std::make_shared<M>(std::move(m)));
    }

    std::size_t size() const { return modules_.size(); }  ///< the number of modules
    bool is_empty() const { return modules_.empty(); }  ///< whether there are none
    Module& operator[](std::size_t i) const;  ///< ValueError when out of range
    std::shared_ptr<Module> ptr(std::size_t i) const;  ///< the module at index i, shared
    /// The module at index i as an M; a ValueError when out of range or of another type.
    template <class M>
    M& at(std::size_t i) const {
        return *ptr<M>(i);
    }
    /// The module at index i as a shared M; a ValueError when out of range or of another type.
    template <class M>
    std::shared_ptr<M> ptr(std::size_t i) const {
        std::shared_ptr<Module> m = ptr(i);
        if (auto typed = std::dynamic_pointer_cast<M>(m)) return typed;
        detail::throw_wrong_type(type_name(), "module " + std::to_string(i), *m, typeid(M));
    }
    auto begin() const { return modules_.begin(); }  ///< iterates the modules (shared pointers)
    auto end() const { return modules_.end(); }  ///< the end of the modules

    std::string type_name() const override { return "ModuleList"; }  ///< "ModuleList"

private:
    std::vector<std::shared_ptr<Module>> modules_;
};

/// Modules by key, in insertion order, each registered under its key (LibTorch's ModuleDict).
/// A key is non-empty, holds no dot and is new (ValueError otherwise).
class ModuleDict : public Module {
public:
    using Item = std::pair<std::string, std::shared_ptr<Module>>;  ///< a key and its module
    ModuleDict() = default;  ///< empty
    /// The items in order, each as insert(key, module).
    explicit ModuleDict(const std::vector<Item>& items) {
        for (const auto& [key, m] : items) insert(key, m);
    }

    /// Adds a shared module under key; returns it.
    template <class M>
        requires std::derived_from<M, Module>
    std::shared_ptr<M> insert(const std::string& key, std::shared_ptr<M> m) {
        detail::check_entry_name(type_name(), "key", *this, key);
        register_module(key, m);
        items_.emplace_back(key, m);
        return m;
    }
    /// Adds a module moved into one the dict owns, under key; returns it.
    template <class M>
        requires std::derived_from<M, Module> && (!std::is_lvalue_reference_v<M>)
    std::shared_ptr<M> insert(const std::string& key, M&& m) {
        return insert(key, std::make_shared<M>(std::move(m)));
    }

    std::size_t size() const { return items_.size(); }  ///< the number of modules
    bool is_empty() const { return items_.empty(); }  ///< whether there are none
    bool contains(const std::string& key) const;  ///< whether key is there
    std::vector<std::string> keys() const;  ///< the keys, in insertion order
    /// The module under key; a missing key is a ValueError listing the keys there are.
    Module& operator[](const std::string& key) const;
    std::shared_ptr<Module> ptr(const std::string& key) const;  ///< the module under key, shared
    /// The module under key as an M; a ValueError when missing or of another type.
    template <class M>
    M& at(const std::string& key) const {
        return *ptr<M>(key);
    }
    /// The module under key as a shared M; a ValueError when missing or of another type.
    template <class M>
    std::shared_ptr<M> ptr(const std::string& key) const {
        std::shared_ptr<Module> m = ptr(key);
        if (auto typed = std::dynamic_pointer_cast<M>(m)) return typed;
        detail::throw_wrong_type(type_name(), "key '" + key + "'", *m, typeid(M));
    }
    auto begin() const { return items_.begin(); }  ///< iterates the (key, module) items
    auto end() const { return items_.end(); }  ///< the end of the items

    std::string type_name() const override { return "ModuleDict"; }  ///< "ModuleDict"

private:
    std::vector<Item> items_;
};

/// @}
}  // namespace tapegrad::nn
