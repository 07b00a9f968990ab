// The CMU Pronouncing Dictionary in Festival's lexicon format: a small hand-written parser for the
// one shape of s-expression an entry is, a hash split, and string vocabularies.
#include "cmudict.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "../../autograd/tensor.hpp"
#include "text.hpp"

namespace tapegrad::nn {

namespace {

constexpr std::size_t kMaxWord = 64, kMaxPhoneme = 8, kMaxPhonemes = 64;

// A character for messages: 'x', or its byte value when it is not printable.
std::string show(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x21 && u < 0x7f) return fmt::format("'{}'", c);
    if (c == ' ') return "a space";
    return fmt::format("byte 0x{:02x}", u);
}

// A cursor over one line; every failure names the file, the line and the column.
struct LineParser {
    std::string_view s;
    const std::string& name;
    std::size_t line;
    std::size_t i = 0;

    [[noreturn]] void fail(const std::string& what) const {
        throw FormatError(fmt::format("parse_cmudict: '{}' line {}: {}", name, line, what));
    }
    std::string here() const { return i < s.size() ? show(s[i]) + fmt::format(" at column {}", i + 1) : "the end of the line"; }
    void skip_space() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    }
    bool peek(char c) {
        skip_space();
        return i < s.size() && s[i] == c;
    }
    void expect(char c, const char* what) {
        skip_space();
        if (i >= s.size() || s[i] != c) fail(fmt::format("expected '{}' {}, found {}", c, what, here()));
        ++i;
    }
    // A bare token: letters, digits, '_' (a part of speech, a phoneme, a stress).
    std::string_view token(const char* what) {
        skip_space();
        const std::size_t start = i;
        while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
        if (i == start) fail(fmt::format("expected {}, found {}", what, here()));
        return s.substr(start, i - start);
    }
};

}  // namespace

bool is_vowel(std::string_view p) {
    return !p.empty() && (p[0] == 'a' || p[0] == 'e' || p[0] == 'i' || p[0] == 'o' || p[0] == 'u');
}

std::vector<std::string> cmu_letters(const CmuEntry& entry) {
    std::vector<std::string> out;
    out.reserve(entry.word.size());
    for (char c : entry.word)
        out.emplace_back(1, static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return out;
}

std::vector<std::string> cmu_phonemes(const CmuEntry& entry, bool with_stress) {
    std::vector<std::string> out;
    out.reserve(entry.phonemes.size());
    for (const CmuPhoneme& p : entry.phonemes)
        out.push_back(with_stress && is_vowel(p.name) ? p.name + std::to_string(p.stress) : p.name);
    return out;
}

std::vector<CmuEntry> parse_cmudict(std::string_view text, const std::string& name) {
    std::vector<CmuEntry> entries;
    std::size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const std::size_t first = line.find_first_not_of(" \t");
        if (first == std::string_view::npos || line[first] == ';') continue;
        if (line_no == 1 && line == "MNCL") continue;

        LineParser p{line, name, line_no};
        CmuEntry e;
        e.line = line_no;
        p.expect('(', "to open the entry");
        p.expect('"', "before the word");
        const std::size_t w0 = p.i;
        while (p.i < line.size() && line[p.i] != '"') {
            const auto u = static_cast<unsigned char>(line[p.i]);
            if (u <= 0x20 || u >= 0x7f || u == '\\')
                p.fail(fmt::format("the word holds {} at column {} (only printable ASCII without spaces, quotes "
                                   "or backslashes)",
                                   show(line[p.i]), p.i + 1));
            ++p.i;
        }
        if (p.i >= line.size()) p.fail("the word's closing '\"' is missing");
        e.word = std::string(line.substr(w0, p.i - w0));
        ++p.i;
        if (e.word.empty()) p.fail("the word is empty");
        if (e.word.size() > kMaxWord)
            p.fail(fmt::format("the word is {} bytes long, more than {}", e.word.size(), kMaxWord));
        e.part_of_speech = std::string(p.token("a part of speech (nil when none)"));
        p.expect('(', "to open the syllables");
        while (!p.peek(')')) {
            p.expect('(', "to open a syllable");
            p.expect('(', "to open the syllable's phonemes");
            const std::size_t syl_begin = e.phonemes.size();
            while (!p.peek(')')) {
                const std::size_t col = p.i + 1;  // peek skipped the spaces
                const std::string_view tok = p.token("a phoneme");
                std::size_t n = tok.size();
                int own = -1;
                if (n > 1 && std::isdigit(static_cast<unsigned char>(tok[n - 1]))) own = tok[--n] - '0';
                for (std::size_t k = 0; k < n; ++k)
                    if (!(tok[k] >= 'a' && tok[k] <= 'z'))
                        p.fail(fmt::format("phoneme '{}' at column {} is not lower-case letters with at most one "
                                           "stress digit",
                                           tok, col));
                if (n > kMaxPhoneme)
                    p.fail(fmt::format("phoneme '{}' at column {} is longer than {} letters", tok, col, kMaxPhoneme));
                if (own > 2) p.fail(fmt::format("phoneme '{}' at column {} has stress {}, not 0, 1 or 2", tok, col, own));
                if (e.phonemes.size() == kMaxPhonemes)
                    p.fail(fmt::format("more than {} phonemes in one pronunciation", kMaxPhonemes));
                e.phonemes.push_back({std::string(tok.substr(0, n)), own, e.syllables});
            }
            p.expect(')', "to close the syllable's phonemes");
            if (e.phonemes.size() == syl_begin) p.fail(fmt::format("syllable {} has no phonemes", e.syllables + 1));
            p.skip_space();
            const std::size_t col = p.i + 1;
            const std::string_view st = p.token("the syllable's stress (0, 1 or 2)");
            if (st.size() != 1 || st[0] < '0' || st[0] > '2')
                p.fail(fmt::format("syllable {} has stress '{}' at column {}, not 0, 1 or 2", e.syllables + 1, st, col));
            for (std::size_t k = syl_begin; k < e.phonemes.size(); ++k)
                if (e.phonemes[k].stress < 0) e.phonemes[k].stress = st[0] - '0';
            p.expect(')', "to close the syllable");
            ++e.syllables;
        }
        p.expect(')', "to close the syllables");
        if (e.syllables == 0) p.fail("the pronunciation is empty");
        p.expect(')', "to close the entry");
        p.skip_space();
        if (p.i < line.size()) p.fail(fmt::format("unexpected {} after the entry", p.here()));
        entries.push_back(std::move(e));
    }
    if (entries.empty()) throw FormatError(fmt::format("parse_cmudict: '{}' holds no entries", name));
    return entries;
}

std::vector<CmuEntry> read_cmudict(const std::string& path) { return parse_cmudict(read_text_file(path), path); }

const char* cmu_split_name(CmuSplit split) {
    switch (split) {
        case CmuSplit::train: return "train";
        case CmuSplit::validation: return "validation";
        case CmuSplit::test: return "test";
    }
    return "?";
}

CmuSplit cmu_split_of(std::string_view word, const CmuSplitOptions& options) {
    const double v = options.validation, t = options.test;
    if (!(v >= 0 && v < 1) || !(t >= 0 && t < 1) || !(v + t < 1))
        throw ValueError(fmt::format("cmu_split_of: validation ({}) and test ({}) must be in [0, 1) with a sum below 1",
                                     v, t));
    std::uint64_t h = 14695981039346656037ull;  // FNV-1a, 64 bits
    for (char c : word) {
        h ^= static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c)));
        h *= 1099511628211ull;
    }
    const auto bucket = static_cast<double>(h % 10000);
    const double train_end = std::round(10000 * (1 - v - t)), validation_end = std::round(10000 * (1 - t));
    return bucket < train_end ? CmuSplit::train : bucket < validation_end ? CmuSplit::validation : CmuSplit::test;
}

CmuDictSplits split_cmudict(const std::vector<CmuEntry>& entries, const CmuSplitOptions& options) {
    CmuDictSplits out;
    cmu_split_of("", options);  // checks the options even when there are no entries
    for (const CmuEntry& e : entries) {
        switch (cmu_split_of(e.word, options)) {
            case CmuSplit::train: out.train.push_back(e); break;
            case CmuSplit::validation: out.validation.push_back(e); break;
            case CmuSplit::test: out.test.push_back(e); break;
        }
    }
    return out;
}

TokenVocab::TokenVocab(std::vector<std::string> symbols) : names_{"<pad>", "<s>", "</s>", "<unk>"} {
    for (std::size_t i = 0; i < names_.size(); ++i) ids_.emplace(names_[i], static_cast<std::int64_t>(i));
    for (std::string& s : symbols) {
        if (s.empty()) throw ValueError(fmt::format("TokenVocab: symbol {} is empty", names_.size() - num_reserved));
        if (auto it = ids_.find(s); it != ids_.end())
            throw ValueError(fmt::format("TokenVocab: symbol '{}' {}", s,
                                         it->second < static_cast<std::int64_t>(num_reserved)
                                             ? "is a reserved name"
                                             : fmt::format("is repeated (already id {})", it->second)));
        ids_.emplace(s, static_cast<std::int64_t>(names_.size()));
        names_.push_back(std::move(s));
    }
}

TokenVocab TokenVocab::build(const std::vector<std::vector<std::string>>& sequences) {
    std::set<std::string> seen;
    for (const auto& seq : sequences) seen.insert(seq.begin(), seq.end());
    return TokenVocab(std::vector<std::string>(seen.begin(), seen.end()));
}

std::int64_t TokenVocab::id(const std::string& symbol) const {
    const auto it = ids_.find(symbol);
    return it == ids_.end() ? unknown_id : it->second;
}

const std::string& TokenVocab::name(std::int64_t id) const {
    if (id < 0 || id >= static_cast<std::int64_t>(names_.size()))
        throw ValueError(fmt::format("TokenVocab::name: id {} is outside [0, {})", id, names_.size()));
    return names_[static_cast<std::size_t>(id)];
}

std::vector<std::int64_t> TokenVocab::encode(const std::vector<std::string>& symbols) const {
    std::vector<std::int64_t> out;
    out.reserve(symbols.size());
    for (const auto& s : symbols) out.push_back(id(s));
    return out;
}

std::vector<std::string> TokenVocab::decode(const std::vector<std::int64_t>& ids) const {
    std::vector<std::string> out;
    for (std::int64_t i : ids) {
        if (i < 0 || i >= static_cast<std::int64_t>(names_.size()))
            throw ValueError(fmt::format("TokenVocab::decode: id {} is outside [0, {})", i, names_.size()));
        if (i == end_id) break;
        if (i != pad_id && i != start_id) out.push_back(names_[static_cast<std::size_t>(i)]);
    }
    return out;
}

TokenVocab cmu_letter_vocab(const std::vector<CmuEntry>& entries) {
    std::vector<std::vector<std::string>> seqs;
    seqs.reserve(entries.size());
    for (const auto& e : entries) seqs.push_back(cmu_letters(e));
    return TokenVocab::build(seqs);
}

TokenVocab cmu_phoneme_vocab(const std::vector<CmuEntry>& entries, bool with_stress) {
    std::vector<std::vector<std::string>> seqs;
    seqs.reserve(entries.size());
    for (const auto& e : entries) seqs.push_back(cmu_phonemes(e, with_stress));
    return TokenVocab::build(seqs);
}

std::size_t edit_distance(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

}  // namespace tapegrad::nn
