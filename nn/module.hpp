// tapegrad::nn: the Module base class. A module owns named parameters and named submodules,
// registered where they are created, so that names like "encoder.weight_ih_l0" exist for saving,
// loading, printing and moving weights to and from PyTorch. Modules are neither copyable nor
// movable: a parent keeps pointers to its submodule members.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/gradcheck.hpp"
#include "../autograd/tensor.hpp"

namespace tapegrad::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// One layer and direction of a recurrent layer (RNN, LSTM, GRU): gates G = 1, 4, 3.
struct RecurrentWeights {
    Tensor w_ih, w_hh;  // [G*H, in], [G*H, H]
    Tensor b_ih, b_hh;  // [G*H] each; undefined without bias
};

class Module {
public:
    Module() = default;
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    Module(Module&&) = delete;
    Module& operator=(Module&&) = delete;

    // Every parameter of this module and its submodules, depth first in registration order,
    // with dotted names ("rnn.weight_ih_l0").
    NamedTensors named_parameters() const;
    std::vector<Tensor> parameters() const;
    // The parameter with that dotted name, or a ValueError listing the names there are.
    Tensor parameter(const std::string& dotted_name) const;
    std::size_t num_parameters() const;  // total element count

    void zero_grad();
    // Training mode (dropout active) or evaluation mode, for this module and all submodules.
    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }
    // Convert every parameter to dtype in place (values preserved up to rounding); gradients are dropped.
    void to(DType dtype);
    DType dtype() const;  // the dtype of the parameters (float32 when there are none)

    // The class name and its options, as in "RNN(10, 20, num_layers=2)"; override in subclasses.
    virtual std::string type_name() const { return "Module"; }
    virtual std::string extra_repr() const { return ""; }
    // A printed tree of submodules with their options, parameter shapes and the parameter count.
    std::string summary() const;

protected:
    // Registers t under name (setting t's name, used in error and gradcheck messages) and returns it.
    Tensor& register_parameter(const std::string& name, Tensor t);
    template <class M>
    M& register_module(const std::string& name, M& m) {
        add_child(name, &m);
        return m;
    }

private:
    void add_child(const std::string& name, Module* m);
    void collect(const std::string& prefix, NamedTensors& out) const;
    void describe(std::string& out, const std::string& name, int depth) const;

    std::vector<std::pair<std::string, Tensor>> params_;
    std::vector<std::pair<std::string, Module*>> children_;
    bool training_ = true;
};

std::string to_string(const Module& m);  // = m.summary()

// gradcheck of f (any tensor computed with the module) with respect to every parameter of the module,
// named by its dotted name, and the extra tensors (inputs, h0). The module must be float64
// (module.to(tapegrad::f64)). options.names, if given, names the extra tensors.
GradcheckResult gradcheck_module(const Module& module, const std::function<Tensor()>& f,
                                 const std::vector<Tensor>& extra = {}, GradcheckOptions options = {});

}  // namespace tapegrad::nn
