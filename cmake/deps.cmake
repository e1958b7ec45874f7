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

# nlohmann-json parses safetensors headers and model configs (io, nn): needed by the library itself.
find_package(nlohmann_json 3 REQUIRED)
if(ATTN_BUILD_TOOLS OR ATTN_BUILD_TESTS)
  find_package(CLI11 REQUIRED)
endif()
# zlib inflates the gzip'd IDX image files (io/idx.h: Fashion-MNIST as Debian ships it).
find_package(ZLIB REQUIRED)
# Audio: libsndfile decodes WAV/FLAC/OGG, libsoxr resamples, FFTW (single precision) transforms the
# feature frames (chosen over kissfft by bench/bench_fft.cc; docs/design.md).
pkg_check_modules(SNDFILE REQUIRED IMPORTED_TARGET sndfile)
pkg_check_modules(SOXR REQUIRED IMPORTED_TARGET soxr)
pkg_check_modules(FFTW3F REQUIRED IMPORTED_TARGET fftw3f)
pkg_check_modules(FFTW3 REQUIRED IMPORTED_TARGET fftw3)
pkg_check_modules(ESPEAK REQUIRED IMPORTED_TARGET espeak-ng)
# PLplot draws every plot (io/plot.h) with its pngcairo device (plplot-driver-cairo, found at run time).
pkg_check_modules(PLPLOT REQUIRED IMPORTED_TARGET plplot)
# stb_image decodes the plots in the tests.
if(ATTN_BUILD_TESTS)
  pkg_check_modules(STB REQUIRED IMPORTED_TARGET stb)
endif()
if(ATTN_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(ATTN_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# MPI (OpenMPI from libopenmpi-dev) for the optional dist layer: sequence-parallel attention. Without it
# attn builds as before, minus attn_dist, its tests and `attn dist`.
if(ATTN_BUILD_DIST)
  find_package(MPI COMPONENTS C)
  if(NOT MPI_C_FOUND)
    message(STATUS "attn: dist layer off (no MPI; install libopenmpi-dev openmpi-bin)")
    set(ATTN_BUILD_DIST OFF)
  endif()
endif()

# Python bindings: on by default when a Python with numpy and pybind11 are found. Debian's numpy belongs
# to /usr/bin/python3 (another python3 on PATH may lack it), so that one is the default.
if(ATTN_BUILD_PYTHON)
  if(NOT Python_EXECUTABLE AND EXISTS /usr/bin/python3)
    set(Python_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "Python interpreter for the attn module")
  endif()
  find_package(Python 3.8 COMPONENTS Interpreter Development.Module)
  set(PYBIND11_FINDPYTHON ON)
  find_package(pybind11 CONFIG QUIET)
  set(ATTN_HAVE_NUMPY OFF)
  if(Python_FOUND)
    execute_process(COMMAND ${Python_EXECUTABLE} -c "import numpy" RESULT_VARIABLE numpy_rc OUTPUT_QUIET ERROR_QUIET)
    if(numpy_rc EQUAL 0)
      set(ATTN_HAVE_NUMPY ON)
    endif()
  endif()
  if(NOT (Python_FOUND AND pybind11_FOUND AND ATTN_HAVE_NUMPY))
    message(STATUS "attn: Python bindings off (need ${Python_EXECUTABLE} with numpy, and pybind11-dev)")
    set(ATTN_BUILD_PYTHON OFF)
  endif()
endif()
