#!/usr/bin/env bash
# Installs, with apt-get on Debian 12 as root, everything tapegrad's build, tests and examples need.
# Idempotent: packages already present are skipped, and apt-get update runs only when something is missing.
set -euo pipefail

PACKAGES=(
  g++ make cmake            # compiler and build
  libxtensor-dev xtl-dev libxsimd-dev   # arrays and SIMD kernels
  libxtensor-blas-dev libopenblas-dev   # BLAS (gemm) through xtensor-blas on OpenBLAS
  libfmt-dev                # formatting
  libzip-dev zipcmp zipmerge ziptool   # .npz archives (libzip's CMake config wants its tools)
  catch2                    # tests
  clang libclang-rt-14-dev  # fuzzing the file loaders with libFuzzer (scripts/fuzz.sh)
  libcli11-dev              # command-line parsing in the examples
  fortunes                  # English text for the character-level language model (the main job)
  festlex-cmu               # the CMU Pronouncing Dictionary: grapheme-to-phoneme data (examples/g2p)
  gnuplot-nox               # the main job's loss curve (PNG) and the plots in docs/img
  libopenmpi-dev openmpi-bin   # data-parallel training over MPI (tapegrad::dist, mpirun)
  doxygen                   # the documentation site and API reference (scripts/docs.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    :
  else
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
