// tapegrad::nn: Module bookkeeping (registration, moves, names, modes, dtype conversion, the printed
// summary).
#include "module.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

// ---- registration and moves ---------------------------------------------------------------------
// Each registration is recorded on both sides: the parent's children_ points at the child, the
// child's parents_ at the parent. A move rewrites the entries on the other side from the old address
// to the new one, and an ending module removes them, so neither side is left pointing at a module
// that has moved or ended. When a parent is moved, its Module part is moved first and its members
// after: the parent takes over the children list (still naming the old members), then each member's
// move rewrites its own entry.

Module::Module(Module&& other) noexcept
    : params_(std::move(other.params_)),
      children_(std::move(other.children_)),
      parents_(std::move(other.parents_)),
      training_(other.training_) {
    other.params_.clear();
    other.children_.clear();
    other.parents_.clear();
    for (Module* p : parents_)
        for (Child& c : p->children_)
            if (c.module == &other) c.module = this;
    for (Child& c : children_)
        for (Module*& q : c.module->parents_)
            if (q == &other) q = this;
}

Module::~Module() {
    // Members registered by reference have ended already (a class's members end before its base);
    // each took itself out of children_. What is left is owned or held elsewhere: let go of it.
    for (Child& c : children_) std::erase_if(c.module->parents_, [this](Module* q) { return q == this; });
    for (Module* p : parents_) std::erase_if(p->children_, [this](const Child& c) { return c.module == this; });
}

void Module::check_new_name(const char* what, const std::string& name) const {
    if (name.empty() || name.find('.') != std::string::npos)
        throw ValueError(fmt::format("{}: bad name '{}' in {}: a name must be non-empty and hold no dot (dots "
                                     "separate the levels of a parameter name, as in 'encoder.rnn.weight_ih_l0')",
                                     what, name, type_name()));
    for (const auto& [n, p] : params_)
        if (n == name)
            throw ValueError(
                fmt::format("{}: '{}' is registered twice in {} (it is already a parameter)", what, name, type_name()));
    for (const Child& c : children_)
        if (c.name == name)
            throw ValueError(
                fmt::format("{}: '{}' is registered twice in {} (it is already a submodule)", what, name, type_name()));
}

Tensor& Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
    check_new_name("register_parameter", name);
    if (!t.defined()) throw ValueError(fmt::format("register_parameter: '{}' is an undefined tensor", name));
    t.set_requires_grad(requires_grad);
    t.set_name(name);
    params_.emplace_back(name, std::move(t));
    return params_.back().second;
}

void Module::add_child(const std::string& name, Module* m, std::shared_ptr<Module> owned) {
    if (!m) throw ValueError(fmt::format("register_module: '{}' is a null module pointer", name));
    check_new_name("register_module", name);
    if (m == this) throw ValueError(fmt::format("register_module: '{}' is the module itself", name));
    children_.push_back({name, m, std::move(owned)});
    if (std::find(m->parents_.begin(), m->parents_.end(), this) == m->parents_.end()) m->parents_.push_back(this);
}

void Module::collect(const std::string& prefix, NamedTensors& out) const {
    for (const auto& [n, p] : params_) out.emplace_back(prefix + n, p);
    for (const Child& c : children_) c.module->collect(prefix + c.name + ".", out);
}

void Module::collect_modules(const std::string& prefix, NamedModules& out) const {
    for (const Child& c : children_) {
        out.emplace_back(prefix + c.name, c.module);
        c.module->collect_modules(prefix + c.name + ".", out);
    }
}

NamedModules Module::named_children() const {
    NamedModules out;
    for (const Child& c : children_) out.emplace_back(c.name, c.module);
    return out;
}

NamedModules Module::named_modules() const {
    NamedModules out;
    collect_modules("", out);
    return out;
}

NamedTensors Module::named_parameters() const {
    NamedTensors out;
    collect("", out);
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [n, p] : named_parameters()) out.push_back(p);
    return out;
}

Tensor Module::parameter(const std::string& dotted_name) const {
    std::vector<std::string> names;
    for (auto& [n, p] : named_parameters()) {
        if (n == dotted_name) return p;
        names.push_back(n);
    }
    throw ValueError(fmt::format("{}: no parameter named '{}'; it has: {}", type_name(), dotted_name,
                                 fmt::join(names, ", ")));
}

std::size_t Module::num_parameters() const {
    std::size_t n = 0;
    for (auto& [name, p] : named_parameters()) n += p.numel();
    return n;
}

void Module::zero_grad() {
    for (auto& [n, p] : named_parameters()) p.zero_grad();
}

void Module::train(bool on) {
    training_ = on;
    for (Child& c : children_) c.module->train(on);
}

void Module::to(DType dtype) {
    for (auto& [n, p] : named_parameters()) {
        if (p.dtype() == dtype) continue;
        // Replace the value inside the same node, so every handle to the parameter sees the change.
        Array converted = p.detach().to(dtype).array();
        p.mutable_array() = std::move(converted);
        p.zero_grad();
    }
}

DType Module::dtype() const {
    for (auto& [n, p] : named_parameters()) return p.dtype();
    return f32;
}

void Module::describe(std::string& out, const std::string& name, int depth) const {
    const std::string pad(static_cast<std::size_t>(depth) * 2, ' ');
    const std::string extra = extra_repr();
    out += pad + (name.empty() ? "" : "(" + name + "): ") + type_name() + "(" + extra + ")\n";
    for (const auto& [n, p] : params_)
        out += fmt::format("{}  {}: {} {}\n", pad, n, shape_str(p.shape()), dtype_name(p.dtype()));
    for (const Child& c : children_) c.module->describe(out, c.name, depth + 1);
}

std::string Module::summary() const {
    std::string out;
    describe(out, "", 0);
    // The parameter count with thousands separators: 1,234,567.
    const std::string digits = std::to_string(num_parameters());
    std::string count;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) count += ',';
        count += digits[i];
    }
    out += fmt::format("parameters: {}", count);
    return out;
}

std::string to_string(const Module& m) { return m.summary(); }

GradcheckResult gradcheck_module(const Module& module, const std::function<Tensor()>& f,
                                 const std::vector<Tensor>& extra, GradcheckOptions options) {
    if (!options.names.empty() && options.names.size() != extra.size())
        throw ValueError(fmt::format("gradcheck_module: {} names given for {} extra tensors", options.names.size(),
                                     extra.size()));
    std::vector<Tensor> tensors;
    std::vector<std::string> names;
    for (auto& [n, p] : module.named_parameters()) {
        if (p.dtype() != f64)
            throw ValueError(fmt::format("gradcheck_module: parameter '{}' of {} is {}; gradcheck needs float64: "
                                         "call module.to(tapegrad::f64) first",
                                         n, module.type_name(), dtype_name(p.dtype())));
        tensors.push_back(p);
        names.push_back(n);
    }
    for (std::size_t i = 0; i < extra.size(); ++i) {
        tensors.push_back(extra[i]);
        names.push_back(!options.names.empty()   ? options.names[i]
                        : !extra[i].name().empty() ? extra[i].name()
                                                   : fmt::format("extra {}", i));
    }
    options.names = names;
    return gradcheck(f, tensors, options);
}

}  // namespace tapegrad::nn
