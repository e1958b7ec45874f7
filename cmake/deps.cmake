# SPDX-License-Identifier: MIT
# Every dependency is a Debian package found here (scripts/install-deps.sh installs them); nothing is
# downloaded at configure or build time.
find_package(PkgConfig REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Threads REQUIRED)

# OpenBLAS through cblas.h. pkg-config's "openblas" names the pthread flavour's include dir, whose cblas.h
# also declares openblas_set_num_threads (we switch BLAS to one thread inside our parallel regions).
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
# Highway with runtime dispatch: kernels are compiled for every target and chosen at run time.
pkg_check_modules(HWY REQUIRED IMPORTED_TARGET libhwy)

if(ATTN_BUILD_TOOLS OR ATTN_BUILD_TESTS)
  find_package(CLI11 REQUIRED)
  find_package(nlohmann_json 3 REQUIRED)
endif()
pkg_check_modules(STB REQUIRED IMPORTED_TARGET stb)
if(ATTN_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(ATTN_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
