// tapegrad::nn: checkpoints on top of the .npz state dicts of serialize.cpp. The step counter and
// the generator's state text are stored in float64 arrays (integers below 2^53 and bytes are exact
// there), as the first version of the format did, so older builds still read checkpoints without
// metadata; the metadata are str arrays, which NumPy reads as text.
#include "checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "serialize.hpp"

namespace tapegrad::nn {

namespace {
const std::string kOptimizer = "optimizer.";
const std::string kExtra = "extra.";
const std::string kMeta = "checkpoint.";
const std::string kScheduler = "scheduler.";
const std::string kMetadata = "checkpoint.meta.";
constexpr double kVersion = 1.0;

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

Tensor encode_text(const std::string& s) {
    Tensor t = zeros({s.size()}, f64);
    auto& a = t.mutable_value<double>();
    for (std::size_t i = 0; i < s.size(); ++i) a.data()[i] = static_cast<unsigned char>(s[i]);
    return t;
}
}  // namespace

namespace {
// save_checkpoint, with the scheduler's state under "scheduler." when there is one.
void save_impl(const std::string& path, const Module& module, const Optimizer& optimizer,
               const LRScheduler* scheduler, std::size_t step, const Generator& gen, const NamedTensors& extras,
               const Metadata& metadata) {
    if (static_cast<double>(step) >= 9007199254740992.0)  // 2^53: beyond it a float64 loses integers
        throw ValueError(fmt::format("save_checkpoint {}: step {} is too large to store exactly", path, step));
    NamedTensors all = state_dict(module);
    std::vector<std::string> reserved{kOptimizer, kExtra, kMeta};
    if (scheduler) reserved.push_back(kScheduler);
    for (const auto& [name, t] : all)
        for (const std::string& p : reserved)
            if (starts_with(name, p))
                throw ValueError(fmt::format("save_checkpoint {}: parameter '{}' starts with '{}', which the "
                                             "checkpoint reserves for its own entries",
                                             path, name, p));
    for (auto& [name, t] : optimizer.state_dict()) all.emplace_back(kOptimizer + name, t);
    if (scheduler)
        for (auto& [name, t] : scheduler->state_dict()) all.emplace_back(kScheduler + name, t);
    for (const auto& [name, t] : extras) {
        if (name.empty()) throw ValueError(fmt::format("save_checkpoint {}: an extra tensor has an empty name", path));
        if (!t.defined()) throw ValueError(fmt::format("save_checkpoint {}: extra '{}' is undefined", path, name));
        all.emplace_back(kExtra + name, t.detach());
    }
    all.emplace_back(kMeta + "version", Tensor::scalar(kVersion, f64));
    all.emplace_back(kMeta + "step", Tensor::scalar(static_cast<double>(step), f64));
    all.emplace_back(kMeta + "lr", Tensor::scalar(optimizer.lr(), f64));
    all.emplace_back(kMeta + "generator", encode_text(gen.state()));
    NamedArrays arrays(all.begin(), all.end());
    for (const auto& [key, value] : metadata) {
        if (key.empty()) throw ValueError(fmt::format("save_checkpoint {}: a metadata key is empty", path));
        arrays.emplace_back(kMetadata + key, value);
    }
    save_arrays(arrays, path);  // checks duplicate names (e.g. an extra given twice) and the text
}

CheckpointInfo restore_impl(const NamedArrays& entries, const std::string& path, Module& module,
                            Optimizer& optimizer, LRScheduler* scheduler, Generator& gen);

NamedArrays read_checkpoint(const std::string& path) {
    try {
        return load_arrays(path);
    } catch (const FormatError& e) {
        throw FormatError(fmt::format("load_checkpoint: {}", e.what()));
    }
}

NamedArrays to_arrays(const NamedTensors& entries) { return NamedArrays(entries.begin(), entries.end()); }
}  // namespace

void save_checkpoint(const std::string& path, const Module& module, const Optimizer& optimizer, std::size_t step,
                     const Generator& gen, const NamedTensors& extras, const Metadata& metadata) {
    save_impl(path, module, optimizer, nullptr, step, gen, extras, metadata);
}
void save_checkpoint(const std::string& path, const Module& module, const Optimizer& optimizer,
                     const LRScheduler& scheduler, std::size_t step, const Generator& gen, const NamedTensors& extras,
                     const Metadata& metadata) {
    save_impl(path, module, optimizer, &scheduler, step, gen, extras, metadata);
}

CheckpointInfo load_checkpoint(const std::string& path, Module& module, Optimizer& optimizer, Generator& gen) {
    return restore_impl(read_checkpoint(path), path, module, optimizer, nullptr, gen);
}
CheckpointInfo load_checkpoint(const std::string& path, Module& module, Optimizer& optimizer, LRScheduler& scheduler,
                               Generator& gen) {
    return restore_impl(read_checkpoint(path), path, module, optimizer, &scheduler, gen);
}

CheckpointInfo restore_checkpoint(const NamedArrays& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, Generator& gen) {
    return restore_impl(entries, path, module, optimizer, nullptr, gen);
}
CheckpointInfo restore_checkpoint(const NamedArrays& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, LRScheduler& scheduler, Generator& gen) {
    return restore_impl(entries, path, module, optimizer, &scheduler, gen);
}
CheckpointInfo restore_checkpoint(const NamedTensors& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, Generator& gen) {
    return restore_impl(to_arrays(entries), path, module, optimizer, nullptr, gen);
}
CheckpointInfo restore_checkpoint(const NamedTensors& entries, const std::string& path, Module& module,
                                  Optimizer& optimizer, LRScheduler& scheduler, Generator& gen) {
    return restore_impl(to_arrays(entries), path, module, optimizer, &scheduler, gen);
}

Metadata load_checkpoint_metadata(const std::string& path) {
    Metadata out;
    bool versioned = false;
    for (const auto& [name, a] : read_checkpoint(path)) {
        versioned = versioned || name == kMeta + "version";
        if (!starts_with(name, kMetadata)) continue;
        const std::string key = name.substr(kMetadata.size());
        if (key.empty() || a.type() != NpyType::unicode || a.shape() != Shape{})
            throw FormatError(fmt::format("load_checkpoint_metadata {}: '{}' is {}, not a 0-d str array under a "
                                          "non-empty key",
                                          path, name, a.describe()));
        out.emplace(key, a.string());
    }
    if (!versioned)
        throw FormatError(fmt::format("load_checkpoint_metadata {}: no '{}version' entry: not a checkpoint written "
                                      "by save_checkpoint",
                                      path, kMeta));
    return out;
}

namespace {
CheckpointInfo restore_impl(const NamedArrays& entries, const std::string& path, Module& module,
                            Optimizer& optimizer, LRScheduler* scheduler, Generator& gen) {
    auto bad = [&](const std::string& why) {
        return FormatError(fmt::format("load_checkpoint {}: {}", path, why));
    };
    NamedTensors opt, sched;
    NamedArrays model;
    bool model_has_non_float = false;
    std::map<std::string, Tensor> meta;
    std::map<std::string, int> seen;
    CheckpointInfo info;
    for (const auto& [name, a] : entries) {
        if (seen[name]++) throw bad(fmt::format("entry '{}' appears twice", name));
        if (a.is_float() && !a.tensor().defined()) throw bad(fmt::format("entry '{}' is undefined", name));
        if (starts_with(name, kMetadata)) {
            const std::string key = name.substr(kMetadata.size());
            if (key.empty()) throw bad(fmt::format("a '{}' entry has an empty key", kMetadata));
            if (a.type() != NpyType::unicode || a.shape() != Shape{})
                throw bad(fmt::format("'{}' is {}, expected one string (a 0-d str array)", name, a.describe()));
            info.metadata.emplace(key, a.string());
            continue;
        }
        if (!starts_with(name, kMeta) && !(starts_with(name, kOptimizer) || starts_with(name, kExtra) ||
                                            (scheduler && starts_with(name, kScheduler)))) {
            model_has_non_float = model_has_non_float || !a.is_float();
            model.emplace_back(name, a);
            continue;
        }
        // Everything else the checkpoint itself writes is float; an int64 step counter is read too.
        const bool int_step = name == kMeta + "step" && a.type() == NpyType::int64 && a.shape() == Shape{};
        if (!a.is_float() && !int_step)
            throw bad(fmt::format("'{}' is {}, expected a float32 or float64 array", name, a.describe()));
        const Tensor t = int_step ? Tensor::scalar(static_cast<double>(a.int64()()), f64) : a.tensor();
        if (int_step && a.int64()() < 0) throw bad(fmt::format("'{}' is {}, not a step count", name, a.int64()()));
        if (starts_with(name, kOptimizer)) {
            const std::string key = name.substr(kOptimizer.size());
            // Step counters become integers inside the optimizer: check them here, where a bad one
            // is a damaged file.
            if ((key == "step" || (key.size() > 5 && key.compare(key.size() - 5, 5, ".step") == 0)) &&
                t.numel() == 1) {
                const double v = t.item();
                if (!(v >= 0.0) || v != std::floor(v) || v >= 9007199254740992.0)
                    throw bad(fmt::format("'{}' is {}, not a step count", name, v));
            }
            opt.emplace_back(key, t);
        } else if (scheduler && starts_with(name, kScheduler)) {
            sched.emplace_back(name.substr(kScheduler.size()), t);
        } else if (starts_with(name, kExtra)) {
            if (name.size() == kExtra.size()) throw bad(fmt::format("an '{}' entry has an empty name", kExtra));
            info.extras.emplace_back(name.substr(kExtra.size()), t);
        } else {
            meta.emplace(name.substr(kMeta.size()), t);
        }
    }
    auto scalar = [&](const std::string& key) {
        auto it = meta.find(key);
        if (it == meta.end())
            throw bad(fmt::format("no '{}{}' entry: not a checkpoint written by save_checkpoint", kMeta, key));
        if (it->second.numel() != 1 || it->second.dtype() != f64)
            throw bad(fmt::format("'{}{}' is {} {}, expected one float64", kMeta, key,
                                  dtype_name(it->second.dtype()), shape_str(it->second.shape())));
        return it->second.item();
    };
    const double version = scalar("version");
    if (version != kVersion)
        throw bad(fmt::format("checkpoint version {} is not supported (this build reads version {})", version,
                              kVersion));
    const double step = scalar("step");
    if (!(step >= 0.0) || step != std::floor(step) || step >= 9007199254740992.0)
        throw bad(fmt::format("'{}step' is {}, not a step count", kMeta, step));
    info.step = static_cast<std::size_t>(step);
    const double lr = scalar("lr");
    if (!std::isfinite(lr) || lr < 0.0) throw bad(fmt::format("'{}lr' is {}, not a learning rate", kMeta, lr));
    auto git = meta.find("generator");
    if (git == meta.end() || git->second.dtype() != f64 || git->second.dim() != 1)
        throw bad(fmt::format("no 1-d float64 '{}generator' entry", kMeta));
    std::string text(git->second.numel(), '\0');
    for (std::size_t i = 0; i < text.size(); ++i) {
        const double c = git->second.at(i);
        if (!(c >= 0.0 && c <= 255.0) || c != std::floor(c))
            throw bad(fmt::format("'{}generator' element {} is {}, not a byte", kMeta, i, c));
        text[i] = static_cast<char>(static_cast<unsigned char>(c));
    }
    Generator restored;
    try {
        restored.set_state(text);
    } catch (const ValueError& e) {
        throw bad(fmt::format("the generator state is corrupt: {}", e.what()));
    }
    meta.erase("version");
    meta.erase("step");
    meta.erase("lr");
    meta.erase("generator");
    if (!meta.empty()) throw bad(fmt::format("unknown entry '{}{}'", kMeta, meta.begin()->first));

    // The scheduler is loaded first (it checks everything before changing anything) and put back if
    // the model or optimizer do not fit; model and optimizer are checked (and the model rolled
    // back) before the generator changes.
    NamedTensors sched_before;
    if (scheduler) {
        if (sched.empty())
            throw ValueError(fmt::format("load_checkpoint {}: the checkpoint holds no scheduler state (no '{}' "
                                         "entries); it was saved without a scheduler",
                                         path, kScheduler));
        sched_before = scheduler->state_dict();
        try {
            scheduler->load_state_dict(sched);
        } catch (const ValueError& e) {
            throw ValueError(fmt::format("load_checkpoint {}: {}", path, e.what()));
        }
    }
    try {
        // A non-float entry never fits a parameter: the strict check lists it with every other problem.
        if (model_has_non_float) load_state_dict_from_arrays(module, model);
        NamedTensors model_tensors;
        for (const auto& [name, a] : model) model_tensors.emplace_back(name, a.tensor());
        load_state_dicts(module, optimizer, model_tensors, opt);
    } catch (const ValueError& e) {
        if (scheduler) scheduler->load_state_dict(sched_before);
        throw ValueError(fmt::format("load_checkpoint {}: {}", path, e.what()));
    }
    // An optimizer state with its groups' learning rates has restored them; one saved before
    // groups existed has only checkpoint.lr.
    const bool has_group_lrs =
        std::any_of(opt.begin(), opt.end(), [](const auto& e) { return starts_with(e.first, "group."); });
    if (!has_group_lrs) optimizer.set_lr(lr);
    gen = restored;
    return info;
}
}  // namespace

}  // namespace tapegrad::nn
