# Sourced by the scripts that build with clang (sanitize.sh, tsan.sh, fuzz.sh).
# clang_build_dir DIR: make sure DIR is not a build directory configured with another compiler
# (CMake cannot switch compilers in place); such a directory is removed and built afresh.
clang_build_dir() {
  local dir="$1"
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang' "$dir/CMakeCache.txt"; then
    echo "$(basename "$0"): $dir/ was configured with another compiler; starting it afresh"
    rm -rf "$dir"
  fi
}
