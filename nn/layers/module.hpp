/// \file
/// \brief The Module base class: named parameters and submodules, modes, dtype.
/// \ingroup modules
///
/// The Module base class. A module owns named parameters and named submodules,
/// registered where they are created, so that names like "encoder.weight_ih_l0" exist for saving,
/// loading, printing and moving weights to and from PyTorch. Modules can be moved (not copied): a
/// registration follows a module to its new address (see Module(Module&&)).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../autograd/gradcheck.hpp"
#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

/// \addtogroup modules
/// @{

/// Tensors with names, in order: parameters, state dicts, checkpoint extras.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
class Module;
/// Modules with dotted names, in order (named_children(), named_modules()).
using NamedModules = std::vector<std::pair<std::string, Module*>>;

/// One layer and direction of a recurrent layer (RNN, LSTM, GRU): gates G = 1, 4, 3.
struct RecurrentWeights {
    Tensor w_ih;  ///< [G*H, in]
    Tensor w_hh;  ///< [G*H, H]
    Tensor b_ih;  ///< [G*H]; undefined without bias
    Tensor b_hh;  ///< [G*H]; undefined without bias
};

/// The base of every layer and model: named parameters and named submodules, registered where
/// they are created, so that saving, loading, printing, gradcheck and optimizers find them by
/// their dotted names ("encoder.rnn.weight_ih_l0"). A module of your own derives from Module,
/// registers its parameters (and submodules) in its constructor and defines its own forward.
/// From examples/custom_cell.cpp:
///
/// \snippet custom_cell.cpp custom_module
///
/// A name that is empty, holds a dot or is already taken is a ValueError at registration.
class Module {
public:
    Module() = default;  ///< no parameters, no submodules, training mode
    virtual ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    /// Moving takes over the parameters (the same tensor handles: optimizers and tapes holding them
    /// are unaffected), the submodules and the mode, and leaves the source empty. Registrations
    /// follow the move in both directions: a parent that registered the source now holds the new
    /// module, and a submodule member that moves along with its parent (as members do when a class
    /// is moved) is found at its new address, so a class like RNNDecoder, whose members "init",
    /// "cell" and "head" are registered by reference, can be returned, stored in a std::vector or
    /// pushed into a Sequential. A submodule held elsewhere (a std::unique_ptr member, a
    /// shared_ptr) does not move and stays registered where it is. A class that keeps pointers to
    /// its own members besides these registrations must delete its own move constructor.
    /// Move assignment is deleted: it would have to unregister what the target held.
    Module(Module&& other) noexcept;
    Module& operator=(Module&&) = delete;

    /// Every parameter of this module and its submodules, depth first in registration order,
    /// with dotted names ("rnn.weight_ih_l0").
    NamedTensors named_parameters() const;
    std::vector<Tensor> parameters() const;  ///< the same parameters without their names (for optimizers)
    /// The parameter with that dotted name, or a ValueError listing the names there are.
    Tensor parameter(const std::string& dotted_name) const;
    std::size_t num_parameters() const;  ///< total element count

    void zero_grad();  ///< drops every parameter's gradient
    /// Training mode (dropout active) or evaluation mode, for this module and all submodules.
    void train(bool on = true);
    void eval() { train(false); }  ///< train(false)
    bool is_training() const { return training_; }  ///< whether in training mode
    /// Convert every parameter to dtype in place (values preserved up to rounding); gradients are dropped.
    void to(DType dtype);
    DType dtype() const;  ///< the dtype of the parameters (float32 when there are none)

    /// The class name and its options, as in "RNN(10, 20, num_layers=2)"; override in subclasses.
    virtual std::string type_name() const { return "Module"; }
    virtual std::string extra_repr() const { return ""; }  ///< the options part of that text
    /// A printed tree of submodules with their options, parameter shapes and the parameter count.
    std::string summary() const;

    /// The direct submodules in registration order, and every module of the tree below this one
    /// (not this one) depth first with dotted names ("encoder", "encoder.rnn", ...).
    NamedModules named_children() const;
    NamedModules named_modules() const;  ///< every module below this one, depth first (see above)

    /// Registration, as in LibTorch (public, so containers and user code can build modules).
    /// Registers t under name, sets t.requires_grad (to requires_grad) and t's name (used in error and
    /// gradcheck messages), and returns the stored handle. The name must be non-empty, hold no dot
    /// (dots separate levels: "encoder.rnn.weight_ih_l0") and be new among this module's parameters
    /// and submodules; otherwise a ValueError.
    Tensor& register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
    /// A submodule that is a member of this module (or otherwise outlives it), not owned: the usual
    /// form in a module's constructor, register_module("rnn", rnn). Same naming rules.
    template <class M>
        requires std::is_base_of_v<Module, M>
    M& register_module(const std::string& name, M& m) {
        add_child(name, &m, nullptr);
        return m;
    }
    /// A submodule owned by this module (shared with whoever else holds the pointer).
    template <class M>
        requires std::is_base_of_v<Module, M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
        add_child(name, m.get(), m);
        return m;
    }
    /// A temporary module, moved into one this module owns: register_module("head", Linear(4, 2)).
    template <class M>
        requires std::is_base_of_v<Module, M> && (!std::is_lvalue_reference_v<M>)
    std::shared_ptr<M> register_module(const std::string& name, M&& m) {
        return register_module(name, std::make_shared<M>(std::move(m)));
    }

private:
    struct Child {
        std::string name;
        Module* module;
        std::shared_ptr<Module> owned;  ///< null for a submodule registered by reference
    };
    void add_child(const std::string& name, Module* m, std::shared_ptr<Module> owned);
    void check_new_name(const char* what, const std::string& name) const;
    void collect(const std::string& prefix, NamedTensors& out) const;
    void collect_modules(const std::string& prefix, NamedModules& out) const;
    void describe(std::string& out, const std::string& name, int depth) const;

    std::vector<std::pair<std::string, Tensor>> params_;
    std::vector<Child> children_;
    /// The modules that registered this one: a move or the end of this module updates their lists.
    std::vector<Module*> parents_;
    bool training_ = true;
};

std::string to_string(const Module& m);  ///< = m.summary()

/// gradcheck of f (any tensor computed with the module) with respect to every parameter of the module,
/// named by its dotted name, and the extra tensors (inputs, h0). The module must be float64
/// (module.to(tapegrad::f64)). options.names, if given, names the extra tensors.
GradcheckResult gradcheck_module(const Module& module, const std::function<Tensor()>& f,
                                 const std::vector<Tensor>& extra = {}, GradcheckOptions options = {});

/// @}
}  // namespace tapegrad::nn
