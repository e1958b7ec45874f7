// SPDX-License-Identifier: MIT
// core/buffer_pool.h: buffers of 4 KiB and more come back for reuse, smaller ones and those past
// the cap do not, and a tensor built on a recycled buffer still starts at zero.
#include "core/buffer_pool.h"

#include "testing/testing.h"

namespace attn::testing {
namespace {

TEST(BufferPool, ReusesLargeBuffersBySizeClass) {
  internal::trim_buffer_pool();
  const size_t bytes = size_t{300} << 10;
  void* a = internal::acquire_buffer(bytes);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  internal::release_buffer(a, bytes);
  EXPECT_GE(internal::pooled_buffer_bytes(), bytes);
  // A slightly smaller request falls in the same class and gets the same block back.
  void* b = internal::acquire_buffer(bytes - 1000);
  EXPECT_EQ(b, a);
  EXPECT_EQ(internal::pooled_buffer_bytes(), 0u);
  internal::release_buffer(b, bytes - 1000);
  internal::trim_buffer_pool();
  EXPECT_EQ(internal::pooled_buffer_bytes(), 0u);
}

TEST(BufferPool, SmallBuffersAreNotPooled) {
  internal::trim_buffer_pool();
  void* p = internal::acquire_buffer(4032);
  ASSERT_NE(p, nullptr);
  internal::release_buffer(p, 4032);
  EXPECT_EQ(internal::pooled_buffer_bytes(), 0u);
}

// A small model's activations (batch 16 × 12 tokens × 64 floats: 48 KiB) are pooled too: from
// malloc's heap they went back to the kernel at the end of every step and faulted in again.
TEST(BufferPool, MidSizedActivationsArePooled) {
  internal::trim_buffer_pool();
  for (const size_t bytes : {size_t{4096}, size_t{16} * 12 * 64 * 4}) {
    void* a = internal::acquire_buffer(bytes);
    ASSERT_NE(a, nullptr);
    internal::release_buffer(a, bytes);
    EXPECT_GE(internal::pooled_buffer_bytes(), bytes) << bytes;
    void* b = internal::acquire_buffer(bytes);
    EXPECT_EQ(b, a) << bytes;
    internal::release_buffer(b, bytes);
    internal::trim_buffer_pool();
  }
}

TEST(BufferPool, HoldsAtMostItsCap) {
  internal::trim_buffer_pool();
  const size_t bytes = size_t{200} << 20;  // three of these exceed the 512 MiB cap
  std::vector<void*> blocks;
  for (int i = 0; i < 3; ++i) blocks.push_back(internal::acquire_buffer(bytes));
  for (void* p : blocks) internal::release_buffer(p, bytes);
  EXPECT_LE(internal::pooled_buffer_bytes(), size_t{512} << 20);
  EXPECT_GE(internal::pooled_buffer_bytes(), 2 * bytes);
  internal::trim_buffer_pool();
}

TEST(BufferPool, ATensorOnARecycledBufferStartsAtZero) {
  internal::trim_buffer_pool();
  const Shape shape{256, 256};  // 256 KiB: pooled
  const float* first = nullptr;
  {
    Tensor t = Tensor::full(shape, 7.0f);
    first = t.data();
  }
  const Tensor u(shape);
  EXPECT_EQ(u.data(), first);  // the same block came back
  for (float v : u.values()) ASSERT_EQ(v, 0.0f);
  internal::trim_buffer_pool();
}

}  // namespace
}  // namespace attn::testing
