// tapegrad: user-defined differentiable functions (see function.hpp).
#include "function.hpp"

#include "detail/op.hpp"
#include "tape.hpp"

namespace tapegrad {

Tensor custom_op(std::string name, const std::vector<Tensor>& inputs, const Tensor& output, CustomBackward backward) {
    auto op = std::make_shared<const std::string>(std::move(name));
    detail::check_defined(op->c_str(), output, "output");
    if (!backward) throw ValueError(fmt::format("{}: custom_op needs a backward function", *op));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        detail::check_defined(op->c_str(), inputs[i]);
        if (inputs[i].dtype() != output.dtype())
            throw DTypeError(fmt::format("{}: input {} is {} but the output is {}", *op, i,
                                         dtype_name(inputs[i].dtype()), dtype_name(output.dtype())));
    }
    const bool rec = detail::should_record(op->c_str(), inputs);
    std::vector<std::shared_ptr<detail::Node>> nodes;
    if (rec)
        for (const Tensor& t : inputs) nodes.push_back(t.node());
    detail::BackwardFn fn;
    if (rec)
        fn = [op, backward = std::move(backward)](detail::BackwardCtx& c) {
            std::vector<Tensor> ins;
            for (std::size_t i = 0; i < c.num_inputs(); ++i) ins.emplace_back(c.in_array(i));
            std::vector<Tensor> grads;
            {
                NoGrad guard;
                grads = backward(Tensor(c.grad_out_array()), ins, Tensor(c.out_array()));
            }
            if (grads.size() != ins.size())
                throw UsageError(fmt::format("{}: the custom backward returned {} gradients for {} inputs", *op,
                                             grads.size(), ins.size()));
            for (std::size_t i = 0; i < ins.size(); ++i) {
                if (!grads[i].defined() || !c.needs(i)) continue;
                if (grads[i].shape() != ins[i].shape() || grads[i].dtype() != ins[i].dtype())
                    throw ShapeError(fmt::format("{}: the custom backward returned a {} {} gradient for input {} "
                                                 "of shape {} and dtype {}",
                                                 *op, shape_str(grads[i].shape()), dtype_name(grads[i].dtype()), i,
                                                 shape_str(ins[i].shape()), dtype_name(ins[i].dtype())));
                detail::dispatch(ins[i].dtype(), [&]<class T>(T) { c.accumulate<T>(i, grads[i].value<T>()); });
            }
        };
    return detail::make_output(op->c_str(), output.array(), std::move(nodes), rec, std::move(fn));
}

}  // namespace tapegrad
