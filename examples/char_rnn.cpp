// A character-level language model: a recurrent layer (a GRU by default; an LSTM or an Elman RNN
// with --cell) learns to predict the next character of a text and then writes new text one
// character at a time. Everything between raw text and samples comes
// from tapegrad: a vocabulary, B parallel streams, truncated BPTT, Adam (or Adagrad), gradient-norm
// clipping, validation loss in bits per character, atomic checkpoints, and sampling with
// temperature, top-k and a priming text.
//
//   char_rnn train [--text FILE] [--steps N] [--minutes M] ...    trains, then prints samples
//   char_rnn sample --checkpoint FILE [--prime TEXT] ...          writes text from a checkpoint
//
// The default text is the English fortunes of Debian's `fortunes` package.
//
// Data-parallel on several processes: `mpirun -np 2 char_rnn train ...` gives each rank its own
// share of the --batch streams and averages the gradients over the ranks every update (see
// docs/distributed.md); rank 0 logs and writes the checkpoint. One process needs no mpirun.
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tapegrad/nn/dist/distributed.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
namespace fs = std::filesystem;

namespace {

// Embedding -> recurrent layer -> Linear: ids [T, B] -> logits [T, B, V]. The recurrent layer is an
// RNN, an LSTM or a GRU, chosen at run time through the interface the three share.
struct CharModel : nn::Module {
    nn::Embedding embed;
    std::unique_ptr<nn::RecurrentLayer> rnn;
    nn::Linear head;
    // The members are built in declaration order (embed, the recurrent layer, head), and that is the
    // order in which their initial weights are drawn from the global generator.
    CharModel(std::size_t vocab, std::size_t embed_dim, std::size_t hidden, std::size_t layers,
              nn::RecurrentKind cell = nn::RecurrentKind::rnn)
        : embed(vocab, embed_dim),
          rnn(nn::make_recurrent(cell, {.input_size = embed_dim, .hidden_size = hidden, .num_layers = layers})),
          head(hidden, vocab) {
        register_module("embed", embed);
        // Under the layer's kind, so the parameters are "gru.weight_ih_l0" (or "rnn.", "lstm.").
        register_module(nn::recurrent_kind_name(cell), *rnn);
        register_module("head", head);
    }
    std::string type_name() const override { return "CharModel"; }
    // state: the layer's state packed into one Tensor, as nn::tbptt and nn::sample carry it (h, or for
    // an LSTM h and c stacked along axis 0), or undefined for zeros. Returns logits and the new state.
    std::pair<Tensor, Tensor> forward(const xt::xarray<std::int64_t>& ids, const Tensor& state) const {
        auto [out, next] = rnn->forward(embed(ids), rnn->unpack_state(state));
        return {head(out), rnn->pack_state(next)};
    }
};

// The hyperparameters a checkpoint needs to rebuild its model, saved with it as metadata strings
// "cell", "embed", "hidden" and "layers" (numpy.load(path)["checkpoint.meta.cell"].item() reads one).
// Older checkpoints hold them as a float tensor, extra.config = [embed, hidden, layers, cell] with
// cell 0 = rnn, 1 = lstm, 2 = gru (three elements, from before the cell was stored, mean rnn); they
// still load.
struct Config {
    std::size_t embed = 64, hidden = 256, layers = 1;
    nn::RecurrentKind cell = nn::RecurrentKind::rnn;
    nn::Metadata to_metadata() const {
        return {{"cell", nn::recurrent_kind_name(cell)},
                {"embed", std::to_string(embed)},
                {"hidden", std::to_string(hidden)},
                {"layers", std::to_string(layers)}};
    }
    static Config from_metadata(const nn::Metadata& meta, const std::string& path) {
        auto size = [&](const std::string& key) {
            const auto it = meta.find(key);
            const std::string text = it == meta.end() ? "" : it->second;
            std::size_t v = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (ec != std::errc() || end != text.data() + text.size() || v == 0)
                throw FormatError("char_rnn: " + path + ": the metadata entry '" + key +
                                  "' is not a positive integer: '" + text + "'");
            return v;
        };
        Config c{size("embed"), size("hidden"), size("layers")};
        try {
            c.cell = nn::parse_recurrent_kind(meta.at("cell"));
        } catch (const ValueError&) {
            throw FormatError("char_rnn: " + path + ": the metadata entry 'cell' is not rnn, lstm or gru: '" +
                              meta.at("cell") + "'");
        }
        return c;
    }
    static Config from_tensor(const Tensor& t) {
        if (t.numel() != 3 && t.numel() != 4)
            throw FormatError("char_rnn: the checkpoint's config entry is not [embed, hidden, layers, cell]");
        Config c{static_cast<std::size_t>(t.at(0)), static_cast<std::size_t>(t.at(1)), static_cast<std::size_t>(t.at(2))};
        if (t.numel() == 4) {
            const double k = t.at(3);
            if (k != 0 && k != 1 && k != 2) throw FormatError("char_rnn: the checkpoint's cell is not 0, 1 or 2");
            const nn::RecurrentKind kinds[] = {nn::RecurrentKind::rnn, nn::RecurrentKind::lstm, nn::RecurrentKind::gru};
            c.cell = kinds[static_cast<int>(k)];
        }
        return c;
    }
};

// The default corpus: every fortune of every plain-text fortune file (the files without an
// extension), in an order shuffled once with a fixed seed, separated by blank lines. Shuffling
// makes the validation part (the end of the text) read like the rest rather than like whichever
// file sorts last.
std::string default_text() {
    const fs::path dir = "/usr/share/games/fortunes";
    if (!fs::is_directory(dir))
        throw ValueError("char_rnn: no --text given and " + dir.string() +
                         " does not exist (install Debian's `fortunes` package, or pass --text FILE)");
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && !e.path().has_extension()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::vector<std::string> fortunes;
    for (const auto& f : files) {
        const std::string s = nn::read_text_file(f.string());
        std::size_t begin = 0;
        for (std::size_t end; begin < s.size(); begin = end + 3) {
            end = s.find("\n%\n", begin);
            if (end == std::string::npos) end = s.size();
            if (end > begin) fortunes.push_back(s.substr(begin, end - begin));
        }
    }
    Generator order(2024);
    std::string text;
    for (std::size_t i : nn::shuffled_indices(fortunes.size(), order)) text += fortunes[i] + "\n\n";
    return text;
}

// Rows [begin, end) of a [N, B] block of streams: the inputs (or, shifted by one, the targets) of a chunk.
xt::xarray<std::int64_t> rows(const xt::xarray<std::int64_t>& streams, std::size_t begin, std::size_t end) {
    const std::size_t B = streams.shape()[1];
    xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape({end - begin, B});
    std::copy(streams.data() + begin * B, streams.data() + end * B, out.data());
    return out;
}

// Columns [begin, end) of a [N, B] block of streams: one rank's share of the streams.
xt::xarray<std::int64_t> columns(const xt::xarray<std::int64_t>& streams, std::size_t begin, std::size_t end) {
    const std::size_t N = streams.shape()[0], B = streams.shape()[1];
    xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape({N, end - begin});
    for (std::size_t t = 0; t < N; ++t)
        std::copy(streams.data() + t * B + begin, streams.data() + t * B + end, out.data() + t * (end - begin));
    return out;
}

// Mean cross-entropy (nats per character) of the model on a [N, B] block of streams, no gradients.
double evaluate(const CharModel& model, const xt::xarray<std::int64_t>& streams, std::size_t chunk) {
    NoGrad guard;
    const std::size_t N = streams.shape()[0], B = streams.shape()[1];
    Tensor state;
    double total = 0;
    std::size_t count = 0;
    for (std::size_t t = 0; t + 1 < N; t += chunk) {
        const std::size_t len = std::min(chunk, N - 1 - t);
        const auto x = rows(streams, t, t + len), y = rows(streams, t + 1, t + 1 + len);
        auto [logits, h] = model.forward(x, state);
        state = h;
        total += cross_entropy(logits, y, {.reduction = Reduction::sum}).item();
        count += len * B;
    }
    return total / static_cast<double>(count);
}

std::string sample_text(const CharModel& model, const nn::Vocab& vocab, const std::string& prime,
                        const nn::SampleOptions& opt, Generator& gen) {
    Tensor state;
    auto step = [&](std::int64_t id, Tensor& s) {
        xt::xarray<std::int64_t> x = xt::xarray<std::int64_t>::from_shape({1, 1});  // [T = 1, B = 1]
        x(0, 0) = id;
        auto [logits, h] = model.forward(x, s);
        s = h;
        return reshape(logits, {-1});
    };
    const auto ids = nn::sample(step, state, vocab.encode_vector(prime), opt, gen);
    return prime + vocab.decode(ids);
}

struct TrainArgs {
    std::string text_path, checkpoint = "char_rnn.npz", optimizer = "adam", prime = "The ", cell = "gru",
                schedule = "cosine", loss_csv;
    std::size_t embed = 64, hidden = 256, layers = 1, seq = 64, batch = 32, steps = 6000, sample_every = 0;
    double minutes = 0.0, lr = 4e-3, clip = 5.0, temperature = 0.8, val_fraction = 0.05, check_bpc = 0.0;
    std::uint64_t seed = 1;
    bool short_run = false;
};

int train(TrainArgs a) {
    if (a.short_run) {  // CI's smoke run: a small model on a slice of the text, a few seconds
        a.hidden = 64, a.embed = 16, a.batch = 16, a.seq = 32, a.steps = 400, a.minutes = 0;
    }
    manual_seed(a.seed);
    Generator gen(a.seed);
    std::string text = a.text_path.empty() ? default_text() : nn::read_text_file(a.text_path);
    if (a.short_run && text.size() > 200000) text.resize(200000);
    const nn::Vocab vocab = nn::Vocab::build(text, {.add_unknown = true});
    const auto [train_ids, val_ids] = nn::split_train_val(vocab.encode(text), a.val_fraction);
    // Every rank cuts the text into the same B streams and trains its own share of them.
    const bool main_rank = dist::is_main();
    if (a.batch % static_cast<std::size_t>(dist::size()) != 0)
        throw ValueError(fmt::format("char_rnn: --batch {} is not a multiple of the {} processes", a.batch, dist::size()));
    const dist::Range mine = dist::shard_range(a.batch);
    const auto streams = columns(nn::batchify(train_ids, a.batch), mine.begin, mine.end);  // [N, B / size]
    const auto val_streams = nn::batchify(val_ids, std::min<std::size_t>(a.batch, val_ids.size() / (2 * a.seq) + 1));

    const nn::RecurrentKind cell = nn::parse_recurrent_kind(a.cell);
    CharModel model(vocab.size(), a.embed, a.hidden, a.layers, cell);
    dist::broadcast_parameters(model);  // one starting point for every rank
    dist::GradientReducer reducer(model.parameters());
    std::unique_ptr<nn::Optimizer> opt;
    if (a.optimizer == "adam") opt = std::make_unique<nn::Adam>(model.parameters(), nn::AdamOptions{.lr = a.lr});
    else if (a.optimizer == "adagrad") opt = std::make_unique<nn::Adagrad>(model.parameters(), nn::AdagradOptions{.lr = a.lr});
    else throw ValueError("char_rnn: --optimizer must be adam or adagrad, got " + a.optimizer);
    // Cosine annealing from --lr down to a twentieth of it over the planned updates: the last
    // updates take small steps, which lowers the validation loss a fixed budget reaches.
    std::unique_ptr<nn::CosineAnnealingLR> schedule;
    if (a.schedule == "cosine") {
        if (a.steps == 0) throw ValueError("char_rnn: --schedule cosine needs --steps (the updates it anneals over)");
        schedule = std::make_unique<nn::CosineAnnealingLR>(*opt, nn::CosineAnnealingLROptions{.T_max = a.steps, .eta_min = a.lr / 20});
    } else if (a.schedule != "none") {
        throw ValueError("char_rnn: --schedule must be none or cosine, got " + a.schedule);
    }
    // The loss curve: step, smoothed training bits/char, and validation bits/char where measured.
    std::FILE* curve = nullptr;
    if (!a.loss_csv.empty() && main_rank) {
        curve = std::fopen(a.loss_csv.c_str(), "w");
        if (!curve) throw FormatError("char_rnn: cannot write the loss curve to " + a.loss_csv);
        fmt::print(curve, "step,train_bpc,validation_bpc\n");
    }

    std::ostream quiet(nullptr);  // where the other ranks' progress goes: nowhere
    std::FILE* out = main_rank ? stdout : nullptr;
    auto say = [&](const std::string& s) { if (out) fmt::print(out, "{}", s); };
    say(fmt::format("text: {} characters, vocabulary {}, {} streams of {} steps, validation {} characters\n",
                    text.size(), vocab.size(), a.batch, streams.shape()[0], val_ids.size()));
    if (dist::size() > 1) say(fmt::format("{} processes, {} streams each\n", dist::size(), mine.size()));
    say(fmt::format("{}\n", model.summary()));
    say(fmt::format("chance level: {:.2f} bits/char (uniform over the vocabulary)\n", std::log2(static_cast<double>(vocab.size()))));

    const auto start = std::chrono::steady_clock::now();
    auto elapsed_min = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60; };
    const std::size_t N = streams.shape()[0];
    const std::size_t planned = a.steps ? a.steps : std::size_t(1) << 40;
    nn::Progress progress(a.steps ? a.steps : 1000000, {.out = main_rank ? nullptr : &quiet, .log_every = a.sample_every});
    std::size_t step = 0;
    double smooth = std::log(static_cast<double>(vocab.size()));
    bool done = false;
    while (!done) {
        // One pass over the streams, in chunks of seq steps: each chunk on its own tape, the state
        // carried forward detached (truncated BPTT), one optimizer step per chunk.
        const std::size_t remaining = planned - step;
        const std::size_t total = std::min(N - 1, remaining * a.seq);
        auto run = [&](const nn::TbpttSpan& span, const Tensor& state) {
            const auto x = rows(streams, span.begin, span.end), y = rows(streams, span.begin + 1, span.end + 1);
            auto [logits, h] = model.forward(x, state);
            return nn::TbpttOut{cross_entropy(logits, y), h};
        };
        auto update = [&](const nn::TbpttUpdate& u) {
            reducer.all_reduce();  // the mean gradient over the ranks (one process: unchanged)
            nn::clip_grad_norm(model.parameters(), a.clip);
            opt->step();
            opt->zero_grad();
            if (schedule) schedule->step();
            ++step;
            smooth = 0.99 * smooth + 0.01 * dist::all_reduce(u.loss, dist::ReduceOp::mean);
            if (curve && step % 50 == 0) fmt::print(curve, "{},{:.4f},\n", step, nn::bits_per_char(smooth));
            progress.update(std::min(step, a.steps ? a.steps : step), smooth, {{"bpc", nn::bits_per_char(smooth)}});
            if (a.sample_every && step % a.sample_every == 0 && main_rank) {
                nn::SampleOptions so{.length = 200, .temperature = a.temperature};
                fmt::print("--- sample at step {} ---\n{}\n---\n", step,
                           sample_text(model, vocab, a.prime, so, gen));
            }
        };
        // Each pass over the streams starts from a zero state: stream b's end does not lead into its start.
        nn::tbptt(total, Tensor(), {.k1 = a.seq}, run, update);
        done = step >= planned || (a.minutes > 0 && elapsed_min() >= a.minutes) || total < a.seq;
        done = dist::all_reduce(done ? 1.0 : 0.0, dist::ReduceOp::max) > 0;  // the ranks' clocks differ
    }
    progress.finish();

    const double val_nats = evaluate(model, val_streams, a.seq);
    const double bpc = nn::bits_per_char(val_nats);
    say(fmt::format("after {} steps ({:.1f} min): training loss {:.3f} nats/char, validation {:.3f} bits/char\n", step,
                    elapsed_min(), smooth, bpc));
    if (curve) {
        fmt::print(curve, "{},{:.4f},{:.4f}\n", step, nn::bits_per_char(smooth), bpc);
        if (std::fclose(curve) != 0) throw FormatError("char_rnn: cannot write the loss curve to " + a.loss_csv);
        fmt::print("loss curve written to {}\n", a.loss_csv);
    }
    if (main_rank) {  // one writer; the others wait until the file is complete
        nn::save_checkpoint(a.checkpoint, model, *opt, step, gen, {{"vocab", vocab.to_tensor()}},
                            Config{a.embed, a.hidden, a.layers, cell}.to_metadata());
        fmt::print("checkpoint written to {}\n", a.checkpoint);
    }
    dist::barrier();
    for (double temp : {0.7, 1.0}) {
        if (!main_rank) break;
        nn::SampleOptions so{.length = 400, .temperature = temp};
        fmt::print("\n--- sample, temperature {} ---\n{}\n", temp, sample_text(model, vocab, a.prime, so, gen));
    }
    if (a.check_bpc > 0 && !(bpc < a.check_bpc)) {
        if (main_rank) fmt::print(stderr, "check failed: validation {:.3f} bits/char is not below {:.3f}\n", bpc, a.check_bpc);
        return 1;
    }
    return 0;
}

int sample_cmd(const std::string& path, const std::string& prime, const nn::SampleOptions& so, std::uint64_t seed) {
    // Rebuild the model from the checkpoint's own configuration and vocabulary, then restore it.
    std::map<std::string, Tensor> entries;
    for (auto& [n, t] : nn::load_tensors(path)) entries.emplace(n, t);
    if (!entries.count("extra.vocab"))
        throw FormatError("char_rnn: " + path + " is not a char_rnn checkpoint (no extra.vocab)");
    const nn::Vocab vocab = nn::Vocab::from_tensor(entries.at("extra.vocab"));
    const nn::Metadata meta = nn::load_checkpoint_metadata(path);
    Config c;
    std::string source = "metadata";
    if (meta.count("cell")) {
        c = Config::from_metadata(meta, path);
    } else if (entries.count("extra.config")) {  // written before the configuration was metadata
        c = Config::from_tensor(entries.at("extra.config"));
        source = "extra.config";
    } else {
        throw FormatError("char_rnn: " + path + " is not a char_rnn checkpoint (no configuration)");
    }
    CharModel model(vocab.size(), c.embed, c.hidden, c.layers, c.cell);
    nn::Adam opt(model.parameters());
    Generator gen(seed);
    const auto info = nn::load_checkpoint(path, model, opt, gen);
    gen.manual_seed(seed);  // sampling draws from --seed, not from where training stopped
    fmt::print("model from {} (trained {} steps), prime \"{}\", temperature {}, top-k {}\n", path, info.step, prime,
               so.temperature, so.top_k);
    fmt::print("{}: embed {}, hidden {}, layers {} (configuration from {})\n\n", nn::recurrent_kind_name(c.cell),
               c.embed, c.hidden, c.layers, source);
    fmt::print("{}\n", sample_text(model, vocab, prime, so, gen));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    dist::Environment env(&argc, &argv);  // MPI: one rank of many under mpirun, else a job of one
    CLI::App app{"Character-level language model: a GRU (or LSTM, or Elman RNN) trained on text, then sampled"};
    app.require_subcommand(1);
    TrainArgs a;
    auto* tr = app.add_subcommand("train", "train on a text file (default: Debian's fortunes)");
    tr->add_option("--text", a.text_path, "UTF-8 text file to train on");
    tr->add_option("--minutes", a.minutes, "stop after this many minutes (0: no limit)")->capture_default_str();
    tr->add_option("--steps", a.steps, "stop after this many updates (0: no limit)")->capture_default_str();
    tr->add_option("--hidden", a.hidden, "RNN hidden size")->capture_default_str();
    tr->add_option("--embed", a.embed, "character embedding size")->capture_default_str();
    tr->add_option("--layers", a.layers, "RNN layers")->capture_default_str();
    tr->add_option("--cell", a.cell, "recurrent layer: rnn (Elman, tanh), lstm or gru")
        ->check(CLI::IsMember({"rnn", "lstm", "gru"}))
        ->capture_default_str();
    tr->add_option("--seq", a.seq, "truncated BPTT length (steps per update)")->capture_default_str();
    tr->add_option("--batch", a.batch, "parallel streams")->capture_default_str();
    tr->add_option("--optimizer", a.optimizer, "adam or adagrad")->capture_default_str();
    tr->add_option("--lr", a.lr, "learning rate")->capture_default_str();
    tr->add_option("--schedule", a.schedule, "learning-rate schedule: none or cosine (down to lr/20 over --steps)")
        ->check(CLI::IsMember({"none", "cosine"}))
        ->capture_default_str();
    tr->add_option("--loss-csv", a.loss_csv, "write the loss curve (step, training and validation bits/char) here");
    tr->add_option("--clip", a.clip, "gradient-norm clipping threshold")->capture_default_str();
    tr->add_option("--sample-every", a.sample_every, "print a sample every N updates (0: only at the end)");
    tr->add_option("--temperature", a.temperature, "temperature of the samples printed during training")->capture_default_str();
    tr->add_option("--prime", a.prime, "text the samples start from")->capture_default_str();
    tr->add_option("--checkpoint", a.checkpoint, "where to write the checkpoint")->capture_default_str();
    tr->add_option("--seed", a.seed, "random seed")->capture_default_str();
    tr->add_option("--check-bpc", a.check_bpc, "exit 1 unless validation bits/char ends below this");
    tr->add_flag("--short", a.short_run, "a quick small run (for CI)");

    std::string ck = "char_rnn.npz", prime = "The ";
    nn::SampleOptions so{.length = 500, .temperature = 0.8};
    std::uint64_t seed = 1;
    auto* sa = app.add_subcommand("sample", "write text from a checkpoint");
    sa->add_option("--checkpoint", ck, "checkpoint written by train")->capture_default_str();
    sa->add_option("--prime", prime, "text to start from")->capture_default_str();
    sa->add_option("--length", so.length, "characters to generate")->capture_default_str();
    sa->add_option("--temperature", so.temperature, "sampling temperature")->capture_default_str();
    sa->add_option("--top-k", so.top_k, "sample among the k most likely characters (0: all)")->capture_default_str();
    sa->add_flag("--greedy", so.greedy, "always the most likely character");
    sa->add_option("--seed", seed, "random seed")->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    // A rank that fails stops the whole job ("rank N: <what>") instead of leaving the others waiting.
    return dist::run_guarded([&] {
        try {
            if (*tr) return train(a);
            return sample_cmd(ck, prime, so, seed);
        } catch (const Error& e) {
            if (dist::size() > 1) throw;
            fmt::print(stderr, "error: {}\n", e.what());
            return 1;
        }
    });
}
