/// \file
/// \brief The CMU Pronouncing Dictionary in Festival's lexicon format: parsing, a fixed word-level
/// train/validation/test split, and vocabularies of letters and phonemes for grapheme-to-phoneme models.
/// \ingroup data
///
/// Debian's `festlex-cmu` ships the dictionary as /usr/share/festival/dicts/cmu/cmudict-0.4.out, one
/// entry a line: `("abbey" nil (((ae b) 1) ((iy) 0)))` is the word, its part of speech (`nil` when
/// none) and its syllables, each a list of ARPAbet phonemes and the syllable's stress (0 or 1 there;
/// 2 is accepted too). A phoneme may carry its own stress digit instead (`ae1`, CMU's plain format).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tapegrad::nn {

/// Where the dictionary lies once `festlex-cmu` is installed.
inline constexpr const char* kCmudictPath = "/usr/share/festival/dicts/cmu/cmudict-0.4.out";

/// One phoneme of a pronunciation.
struct CmuPhoneme {
    /// ARPAbet name in lower case without a stress digit: "ae", "b", "ng".
    std::string name;
    /// The stress of its syllable (or its own digit when it had one): 0, 1 or 2.
    int stress = 0;
    /// 0-based index of its syllable within the word.
    std::size_t syllable = 0;
};

/// One entry of the dictionary: a word and one of its pronunciations. A word with several
/// pronunciations (or parts of speech) has several entries, in file order.
struct CmuEntry {
    /// The word as the file spells it ("abbey", "AWOL"): case kept.
    std::string word;
    /// The part of speech, "nil" when the entry has none ("n", "v", "j", "dt" ...).
    std::string part_of_speech;
    /// The pronunciation, syllables in order; never empty.
    std::vector<CmuPhoneme> phonemes;
    /// How many syllables the pronunciation has (at least 1).
    std::size_t syllables = 0;
    /// 1-based line of the entry in its file.
    std::size_t line = 0;
};

/// True for an ARPAbet vowel (a name starting with a, e, i, o or u: "aa", "ax", "er", "uw" ...).
/// Only vowels carry stress in CMU's own format.
bool is_vowel(std::string_view phoneme);

/// The word's letters, lower-cased, one string each: "AWOL" -> {"a", "w", "o", "l"}.
std::vector<std::string> cmu_letters(const CmuEntry& entry);

/// The pronunciation as names. Without stress: {"ae", "b", "iy"}. With stress, each vowel gets its
/// stress digit as CMU writes it and consonants stay bare: {"ae1", "b", "iy0"}.
std::vector<std::string> cmu_phonemes(const CmuEntry& entry, bool with_stress);

/// Parses dictionary text. `name` (a path, or any label) is what error messages call the input.
/// A first line "MNCL" (Festival's header), blank lines and lines starting with ';' are skipped.
/// \throws FormatError naming `name` and the 1-based line for any other line that is not one
///   well-formed entry: a missing or unexpected parenthesis or quote, an empty word or pronunciation,
///   a word with a control, space, quote, backslash or non-ASCII byte, a phoneme that is not lower-case
///   letters with at most one trailing stress digit, a stress other than 0, 1 or 2, text after the
///   entry; and for a word longer than 64 bytes, a phoneme longer than 8, more than 64 phonemes.
/// \throws FormatError when the text holds no entry at all.
std::vector<CmuEntry> parse_cmudict(std::string_view text, const std::string& name = "<memory>");

/// Reads and parses a dictionary file (read_text_file, then parse_cmudict).
/// \throws FormatError naming the path when it is missing, unreadable, empty or not UTF-8, or as
///   parse_cmudict does.
std::vector<CmuEntry> read_cmudict(const std::string& path = kCmudictPath);

/// The part of the data an entry belongs to.
enum class CmuSplit {
    train,       ///< fitting the model
    validation,  ///< choosing settings and checkpoints
    test,        ///< the numbers reported, looked at once
};

/// "train", "validation" or "test".
const char* cmu_split_name(CmuSplit split);

/// The split's sizes, as fractions of the words.
struct CmuSplitOptions {
    /// Fraction of words in the validation part, in [0, 1).
    double validation = 0.05;
    /// Fraction of words in the test part, in [0, 1); validation + test must be below 1.
    double test = 0.05;
};

/// The part a word belongs to, from the 64-bit FNV-1a hash of its lower-cased spelling (so every
/// pronunciation of a word, and "Bubba" and "bubba", fall in the same part, and the split is the
/// same on every machine and in every version of the file): the hash modulo 10 000, below
/// 10 000 * (1 - validation - test) is train, then validation, then test.
/// \throws ValueError when the fractions are out of range.
CmuSplit cmu_split_of(std::string_view word, const CmuSplitOptions& options = {});

/// A dictionary cut into its three parts, each in file order.
struct CmuDictSplits {
    std::vector<CmuEntry> train;       ///< entries whose word cmu_split_of puts in train
    std::vector<CmuEntry> validation;  ///< entries whose word is in validation
    std::vector<CmuEntry> test;        ///< entries whose word is in test
};

/// Cuts entries by cmu_split_of of their word.
/// \throws ValueError when the fractions are out of range.
CmuDictSplits split_cmudict(const std::vector<CmuEntry>& entries, const CmuSplitOptions& options = {});

/// A vocabulary of string symbols (letters, phonemes) for a sequence-to-sequence model: ids 0..3
/// are reserved for padding "<pad>", start "<s>", end "</s>" and unknown "<unk>", then the symbols.
class TokenVocab {
public:
    static constexpr std::int64_t pad_id = 0;      ///< padding, ignored by the loss
    static constexpr std::int64_t start_id = 1;    ///< the decoder's first input
    static constexpr std::int64_t end_id = 2;      ///< ends an output sequence
    static constexpr std::int64_t unknown_id = 3;  ///< any symbol the vocabulary does not hold
    static constexpr std::size_t num_reserved = 4;  ///< how many ids the four above take

    /// A vocabulary of `symbols` (ids 4, 5, ... in the order given).
    /// \throws ValueError when a symbol is empty, repeated, or one of the reserved names.
    explicit TokenVocab(std::vector<std::string> symbols);

    /// The symbols of `sequences`, sorted (byte order), so the same data always gives the same ids.
    static TokenVocab build(const std::vector<std::vector<std::string>>& sequences);

    /// The number of ids, the reserved four included.
    std::size_t size() const { return names_.size(); }
    /// Every name by id, the reserved four first.
    const std::vector<std::string>& names() const { return names_; }
    /// The id of a symbol; unknown_id when the vocabulary does not hold it.
    std::int64_t id(const std::string& symbol) const;
    /// The name of an id.
    /// \throws ValueError when id is outside [0, size()).
    const std::string& name(std::int64_t id) const;
    /// The ids of a sequence (no start or end added).
    std::vector<std::int64_t> encode(const std::vector<std::string>& symbols) const;
    /// The names of ids, stopping at the first end_id and leaving out pad and start ids.
    /// \throws ValueError for an id outside [0, size()).
    std::vector<std::string> decode(const std::vector<std::int64_t>& ids) const;

private:
    std::vector<std::string> names_;
    std::unordered_map<std::string, std::int64_t> ids_;
};

/// The letters of the entries' words (lower-cased), as a vocabulary.
TokenVocab cmu_letter_vocab(const std::vector<CmuEntry>& entries);
/// The phonemes of the entries' pronunciations, with or without stress digits, as a vocabulary.
TokenVocab cmu_phoneme_vocab(const std::vector<CmuEntry>& entries, bool with_stress);

/// Levenshtein distance between two id sequences (insertions, deletions and substitutions cost 1):
/// what phoneme and word error rates count.
std::size_t edit_distance(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b);

}  // namespace tapegrad::nn
