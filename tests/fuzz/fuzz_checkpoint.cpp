// Fuzz target: a training checkpoint read from memory (load_tensors_from_memory, then
// restore_checkpoint into a small model and its Adam optimizer, as load_checkpoint does). Only
// tapegrad::Error may escape; a refused checkpoint must leave the model unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <tapegrad/tapegrad.hpp>

#include "zip_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tapegrad;
    manual_seed(0);  // the same model for every input
    nn::Linear model(3, 2);  // the seed corpus is made of checkpoints of this model
    nn::Adam opt(model.parameters());
    Generator gen(1);
    const double w0 = model.weight.at(0);
    try {
        const nn::NamedTensors entries =
            nn::load_tensors_from_memory(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npz");
        try {
            const nn::CheckpointInfo info = nn::restore_checkpoint(entries, "fuzz.npz", model, opt, gen);
            (void)info;
            // A restored model and optimizer must be usable: one training step.
            Tape tape;
            Tensor loss = sum(model(Tensor::of({{1.0, 2.0, 3.0}})));
            tape.backward(loss);
            opt.step();
            gen.next_u64();
        } catch (const tapegrad::Error&) {
            if (model.weight.at(0) != w0 && !(model.weight.at(0) != model.weight.at(0))) std::abort();
            throw;
        }
    } catch (const tapegrad::Error&) {
    }
    return 0;
}
