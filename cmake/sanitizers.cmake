# SPDX-License-Identifier: MIT
# ASan+UBSan for the whole build when ATTN_SANITIZE is on: any report aborts the test that caused it.
if(ATTN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
if(ATTN_NATIVE)
  add_compile_options(-march=native)
endif()
