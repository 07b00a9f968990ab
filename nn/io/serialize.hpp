/// \file
/// \brief Saving and loading named arrays and state dicts as NumPy .npz files.
/// \ingroup files
///
/// Saving and loading named arrays as NumPy .npz files (a zip of .npy arrays, read
/// by numpy.load). Files are written atomically: a temporary file in the same folder, flushed to
/// disk, then renamed over the target, so a crash never leaves a half-written file where the last
/// good one was. Loading checks every entry and lists every mismatch at once; it can also load part
/// of a model, or a model from part of a file (LoadOptions), as PyTorch's strict=False does.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "../../autograd/index.hpp"
#include "../layers/module.hpp"
#include "../optim/optim.hpp"

namespace tapegrad::nn {

/// \addtogroup files
/// @{

// ---- arrays of every dtype an .npz holds here ---------------------------------------------------

/// What an .npy array holds, from its 'descr': `<f4`, `<f8`, `<i8`, `<i4`, `|b1`,
/// `<U<n>` (text of at most n code points), `|S<n>` (at most n bytes).
enum class NpyType : std::uint8_t {
    float32,  ///< `<f4`
    float64,  ///< `<f8`
    int64,    ///< `<i8`
    int32,    ///< `<i4`
    boolean,  ///< `|b1`
    unicode,  ///< `<U<n>`, text
    bytes     ///< `|S<n>`, raw bytes
};
const char* npy_type_name(NpyType t);  ///< "float32", "float64", "int64", "int32", "bool", "str", "bytes"

/// An array of strings: NumPy's '<U' arrays (text, held here as UTF-8) or '|S' arrays (raw bytes).
/// As in NumPy, trailing NUL characters are not kept, so a string ending in one cannot be saved.
struct StringArray {
    Shape shape;                      ///< [] for a single string
    std::vector<std::string> values;  ///< one per element, in C order
    bool bytes = false;               ///< saved as '|S' (bytes) rather than '<U' (text, must be UTF-8)
};

/// One array of any of those types: a Tensor for float32/float64, an xtensor array for integers and
/// bools (xt::xarray<std::int64_t> is what the library takes for ids and lengths), or strings.
class NpyArray {
public:
    NpyArray(Tensor t);                      ///< float32 or float64
    NpyArray(xt::xarray<std::int64_t> a);    ///< int64
    NpyArray(xt::xarray<std::int32_t> a);    ///< int32
    NpyArray(xt::xarray<bool> a);            ///< bool
    NpyArray(const LongTensor& a);           ///< int64
    NpyArray(const BoolTensor& a);           ///< bool
    NpyArray(StringArray s);                 ///< values.size() must match the shape (ValueError)
    NpyArray(std::string text);              ///< one string, 0-d ('<U')
    NpyArray(const char* text);              ///< one string, 0-d ('<U')

    NpyType type() const;  ///< what it holds
    bool is_float() const { return v_.index() == 0; }  ///< float32 or float64 (a Tensor)
    Shape shape() const;  ///< its shape
    std::string describe() const;  ///< "int64 [3]"

    /// Typed access. Another type is a DTypeError saying what the array is; `what` names it there
    /// (e.g. "fixture.npz: entry 'lengths'").
    const Tensor& tensor(const std::string& what = "the array") const;              ///< float32/float64
    xt::xarray<std::int64_t> int64(const std::string& what = "the array") const;    ///< int64, int32 or bool
    xt::xarray<bool> bools(const std::string& what = "the array") const;            ///< bool only
    const StringArray& strings(const std::string& what = "the array") const;        ///< '<U' or '|S'
    const std::string& string(const std::string& what = "the array") const;         ///< exactly one string

    /// The array, whichever type it is.
    using Value = std::variant<Tensor, xt::xarray<std::int64_t>, xt::xarray<std::int32_t>, xt::xarray<bool>,
                               StringArray>;
    const Value& value() const { return v_; }  ///< the array as a variant

private:
    Value v_;
};

/// Entries of an .npz archive, in order: a name and an array of any type.
using NamedArrays = std::vector<std::pair<std::string, NpyArray>>;

// ---- files --------------------------------------------------------------------------------------

/// Writes tensors (float32 -> '<f4', float64 -> '<f8') as name.npy entries of an .npz archive.
void save_tensors(const NamedTensors& tensors, const std::string& path);
/// Writes arrays of any NpyType, mixed, the same way: save_arrays({{"weight", w}, {"lengths",
/// xt::xarray<std::int64_t>{3, 1}}, {"config", "hidden=64"}}, path).
void save_arrays(const NamedArrays& arrays, const std::string& path);

/// Reads every entry of an .npz archive, whatever its type, in archive order.
/// A missing, truncated or malformed file, or an entry of a dtype outside NpyType, is a FormatError
/// naming the file and the entry. Every entry name appears once; an entry's sizes are checked against
/// the bytes really present before memory is set aside for it, so a hostile file cannot make the
/// loader allocate much more than the file holds.
NamedArrays load_arrays(const std::string& path);
/// load_arrays for an archive already in memory; `name` stands for the file in messages.
NamedArrays load_arrays_from_memory(std::string_view bytes, const std::string& name = "<memory>");
/// The float32/float64 entries of an .npz archive, in archive order. Entries of the other types are
/// read and checked like the rest, then left out (load_arrays or NpzArchive returns them).
NamedTensors load_tensors(const std::string& path);
/// load_tensors for an archive already in memory; `name` stands for the file in messages.
NamedTensors load_tensors_from_memory(std::string_view bytes, const std::string& name = "<memory>");

/// An .npz archive read whole, with its entries looked up by name and read as the type wanted
/// (`fx.tensor("input")`, `fx.int64("lengths")`). An unknown name is a ValueError naming the file and listing the entries; a wrong type a
/// DTypeError naming the file, the entry and its type.
class NpzArchive {
public:
    /// Reads the file (load_arrays, with its FormatErrors).
    static NpzArchive read(const std::string& path);
    /// An archive already in memory; `name` stands for the file in messages.
    static NpzArchive from_memory(std::string_view bytes, const std::string& name = "<memory>");
    NpzArchive(NamedArrays entries, std::string name);  ///< two entries with one name: ValueError

    const std::string& name() const { return name_; }  ///< the file name, as messages show it
    const NamedArrays& entries() const { return entries_; }  ///< every entry, in archive order
    bool contains(const std::string& key) const { return index_.count(key) > 0; }  ///< whether key is an entry
    const NpyArray& at(const std::string& key) const;  ///< the entry key, whatever its type
    const Tensor& tensor(const std::string& key) const;  ///< a float32/float64 entry
    xt::xarray<std::int64_t> int64(const std::string& key) const;  ///< an int64, int32 or bool entry
    xt::xarray<bool> bools(const std::string& key) const;  ///< a bool entry
    const std::string& string(const std::string& key) const;  ///< an entry of exactly one string
    const StringArray& strings(const std::string& key) const;  ///< a string array entry
    NamedTensors tensors() const;  ///< the float entries, in archive order

private:
    std::string where(const std::string& key) const;
    NamedArrays entries_;
    std::string name_;
    std::map<std::string, std::size_t> index_;
};

/// One .npy array as bytes (C order): what save_arrays stores for each entry.
std::string to_npy(const NpyArray& a);
/// Parses one float32/float64 .npy array (version 1-3, little-endian, C order, or Fortran order when
/// that is the same layout). Anything else, or data shorter or longer than the shape says, is a
/// FormatError naming `name`.
Tensor from_npy(std::string_view bytes, const std::string& name = "npy");
/// The same for an array of any NpyType.
NpyArray array_from_npy(std::string_view bytes, const std::string& name = "npy");

// ---- modules ------------------------------------------------------------------------------------

/// How a state dict is matched to a module's parameters.
struct LoadOptions {
    /// Every parameter must be in the state and every entry (under the prefix) must be a parameter.
    /// Off: a parameter without an entry keeps its value and an entry without a parameter is left
    /// alone; both are listed in the LoadReport. Shapes and dtypes are checked either way.
    bool strict = true;
    /// Only entries whose names start with this are read, with it removed: {.prefix = "encoder."}
    /// loads a saved seq2seq's encoder.* entries into an encoder on its own. Other entries are
    /// ignored (neither loaded nor unexpected). A prefix no entry starts with is a ValueError.
    std::string prefix = {};
};

/// What a load did, by name (PyTorch's missing_keys and unexpected_keys, plus what was loaded).
struct LoadReport {
    std::vector<std::string> loaded;           ///< the module's parameters now holding the state's values
    std::vector<std::string> missing_keys;     ///< the module's parameters the state has no entry for
    std::vector<std::string> unexpected_keys;  ///< entries (full names, prefix included) with no parameter
};
/// "loaded 4 parameter(s); missing: 'decoder.weight'; unexpected: none"
std::string to_string(const LoadReport& report);

/// The module's parameters by dotted name, copied (later training does not change the result).
NamedTensors state_dict(const Module& module);
/// Copies values into the module's parameters. Every problem (a missing or unexpected entry when
/// strict, a wrong shape or dtype, a name given twice) is listed in one ValueError, and then nothing
/// is changed. Not strict, a load that would set no parameter at all is a ValueError too (a wrong
/// prefix, or another model's file), rather than a silent no-op.
LoadReport load_state_dict(Module& module, const NamedTensors& state, const LoadOptions& options = {});
/// The same for entries of any type, as load_arrays returns them: a non-float entry never fits a
/// parameter, so it is unexpected, or a dtype mismatch when it has a parameter's name.
LoadReport load_state_dict_from_arrays(Module& module, const NamedArrays& state, const LoadOptions& options = {});

/// Loads a model's and its optimizer's state together: both are checked before either changes, so
/// when one does not fit, model and optimizer are left as they were (a ValueError listing the problems).
void load_state_dicts(Module& module, Optimizer& optimizer, const NamedTensors& model_state,
                      const NamedTensors& optimizer_state);

/// save_tensors(state_dict(module)), and load_state_dict_from_arrays(module, load_arrays(path),
/// options) with the path in its messages.
void save(const Module& module, const std::string& path);
/// Loads a file written by save(module, path) (or by numpy.savez from a PyTorch state_dict).
LoadReport load(Module& module, const std::string& path, const LoadOptions& options = {});

/// The model and its optimizer's state in one file: the parameters under their own names, the
/// optimizer's state under "optimizer." (so numpy.load still finds every parameter by name).
void save(const Module& module, const Optimizer& optimizer, const std::string& path);
/// Loads what save(module, optimizer, path) wrote; both are checked before either changes (a
/// ValueError listing the problems, a FormatError for a bad file).
void load(Module& module, Optimizer& optimizer, const std::string& path);

/// @}
}  // namespace tapegrad::nn
