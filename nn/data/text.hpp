/// \file
/// \brief Character-level text for language models: UTF-8, vocabularies, streams.
/// \ingroup data
///
/// Character-level text for language models: reading a UTF-8 file, a vocabulary of
/// Unicode code points (a character may be several bytes), encoding to ids and back, storing the
/// vocabulary next to a model's parameters, and cutting a long id sequence into parallel streams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

/// \addtogroup data
/// @{

/// The whole file as bytes. FormatError (naming the path) when it is missing or unreadable (with the
/// OS reason), empty, or not valid UTF-8 (with the byte offset and line of the first bad byte).
/// Strict UTF-8: overlong forms, surrogates and code points above U+10FFFF are rejected.
std::string read_text_file(const std::string& path);

/// Decodes strict UTF-8 to code points. A bad byte is a ValueError naming `op`, its byte offset and
/// its 1-based line.
std::vector<char32_t> utf8_decode(const std::string& utf8, const char* op = "utf8_decode");
/// Encodes code points as UTF-8; an invalid code point (surrogate, > U+10FFFF) is a ValueError.
std::string utf8_encode(const std::vector<char32_t>& code_points);
/// Checks that `utf8` is strict UTF-8 without decoding it (no memory beyond the text). A bad byte
/// is a ValueError naming `op`, its byte offset and its 1-based line, as utf8_decode reports it.
void utf8_validate(std::string_view utf8, const char* op = "utf8_validate");
/// A character for messages: 'é' (U+00E9); control characters escaped, e.g. a newline as
/// '\\n' (U+000A).
std::string describe_char(char32_t c);

/// Options of Vocab::build().
struct VocabOptions {
    /// Add U+FFFD as the last symbol and map every character not seen at build time to it.
    bool add_unknown = false;
};

/// A character vocabulary: the ids of Unicode code points, with an optional unknown symbol
/// (U+FFFD) for characters not seen when it was built.
class Vocab {
public:
    /// The distinct characters of the text, sorted by code point, so the same text always gives
    /// the same ids whatever order its characters first appear in. With add_unknown, U+FFFD comes
    /// last (after the sorted symbols) and is the unknown id; a U+FFFD in the text maps to it.
    /// Empty or invalid UTF-8 text is a ValueError.
    static Vocab build(const std::string& utf8_text, VocabOptions options = {});

    /// symbols[i] has id i. With has_unknown, the last symbol is the unknown one. Duplicates,
    /// invalid code points, or no symbols at all are a ValueError.
    explicit Vocab(std::vector<char32_t> symbols, bool has_unknown);

    std::size_t size() const { return symbols_.size(); }  ///< the number of symbols (ids 0..size()-1)
    const std::vector<char32_t>& symbols() const { return symbols_; }  ///< the code points, in id order
    bool has_unknown() const { return has_unknown_; }  ///< whether the last symbol is the unknown one
    /// The unknown id (size() - 1); UsageError when the vocabulary has none.
    std::int64_t unknown_id() const;

    /// A character not in the vocabulary maps to the unknown id, or is a ValueError naming it when
    /// there is no unknown symbol.
    std::int64_t id(char32_t c) const;
    /// ValueError when id is outside [0, size()).
    char32_t symbol(std::int64_t id) const;

    /// The ids of the characters of utf8, as id() maps them (invalid UTF-8 is a ValueError).
    std::vector<std::int64_t> encode_vector(const std::string& utf8) const;
    xt::xarray<std::int64_t> encode(const std::string& utf8) const;  ///< [N] for N characters
    std::string decode(const xt::xarray<std::int64_t>& ids) const;   ///< ids [N] (1-D)
    std::string decode(const std::vector<std::int64_t>& ids) const;  ///< the text of these ids, as UTF-8

    /// For saving with nn::save_tensors: float64 [size() + 1], the code points in id order
    /// (exact: every code point is below 2^53), then 1 if the last symbol is the unknown one, else 0.
    Tensor to_tensor() const;
    /// The inverse of to_tensor (float32 is accepted too: code points are below 2^24). A tensor that
    /// is not 1-D, too short, has a non-integral or invalid code point, a duplicate, or a last element
    /// other than 0/1 is a FormatError.
    static Vocab from_tensor(const Tensor& t);

private:
    std::vector<char32_t> symbols_;
    std::unordered_map<char32_t, std::int64_t> ids_;
    bool has_unknown_ = false;
};

/// The vocabulary stored (by to_tensor) as entry `entry` of an .npz archive, e.g. "extra.vocab" in a
/// checkpoint. A damaged archive, a missing entry or a bad vocabulary tensor is a FormatError naming
/// the file and the entry.
Vocab load_vocab(const std::string& path, const std::string& entry);

/// Cuts one long id sequence [N] into B parallel streams for truncated BPTT: result [N / B, B],
/// time-major, column b = ids[b * (N / B) .. (b + 1) * (N / B)), so each column reads a contiguous
/// chunk of the text top to bottom. The last N % B ids are dropped. B == 0 or N < B: ValueError.
xt::xarray<std::int64_t> batchify(const xt::xarray<std::int64_t>& ids, std::size_t B);

/// The first part for training, the last round(N * val_fraction) ids for validation (no shuffling:
/// text is sequential). val_fraction in (0, 1) and both parts non-empty, else a ValueError.
std::pair<xt::xarray<std::int64_t>, xt::xarray<std::int64_t>> split_train_val(
    const xt::xarray<std::int64_t>& ids, double val_fraction);

/// @}
}  // namespace tapegrad::nn
