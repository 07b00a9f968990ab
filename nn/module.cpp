// tapegrad::nn: Module bookkeeping (names, modes, dtype conversion, the printed summary).
#include "module.hpp"

#include <fmt/format.h>

#include "../autograd/tensor.hpp"

namespace tapegrad::nn {

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
    if (name.empty() || name.find('.') != std::string::npos)
        throw ValueError(fmt::format("register_parameter: bad name '{}' (non-empty, no dots)", name));
    if (!t.defined()) throw ValueError(fmt::format("register_parameter: '{}' is an undefined tensor", name));
    for (const auto& [n, p] : params_)
        if (n == name) throw ValueError(fmt::format("register_parameter: '{}' is registered twice", name));
    t.set_requires_grad(true);
    t.set_name(name);
    params_.emplace_back(name, std::move(t));
    return params_.back().second;
}

void Module::add_child(const std::string& name, Module* m) {
    if (name.empty() || name.find('.') != std::string::npos)
        throw ValueError(fmt::format("register_module: bad name '{}' (non-empty, no dots)", name));
    for (const auto& [n, c] : children_)
        if (n == name) throw ValueError(fmt::format("register_module: '{}' is registered twice", name));
    children_.emplace_back(name, m);
}

void Module::collect(const std::string& prefix, NamedTensors& out) const {
    for (const auto& [n, p] : params_) out.emplace_back(prefix + n, p);
    for (const auto& [n, c] : children_) c->collect(prefix + n + ".", out);
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
    for (auto& [n, c] : children_) c->train(on);
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
    for (const auto& [n, c] : children_) c->describe(out, n, depth + 1);
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
