// SPDX-License-Identifier: MIT
#include <algorithm>
#include <string>

#include "attn/dist/sequence.h"
#include "ops/internal/checks.h"

namespace attn::dist {
namespace {

// Boundary i of n equal parts of length (floor division, so the parts differ by at most one).
int64_t boundary(int64_t length, int64_t parts, int64_t i) {
  return length / parts * i + length % parts * i / parts;
}

void check_sequence_tensor(const char* fn, const char* name, const BasicView<const float>& t) {
  internal::check_rank(fn, name, t, 4);
}

}  // namespace

SequenceLayout::SequenceLayout(int64_t length, int ranks, Split split)
    : length_(length), ranks_(ranks), split_(split) {
  const char* fn = "dist::SequenceLayout";
  if (ranks < 1) fail<ValueError>(fn, "ranks must be >= 1 but is ", ranks);
  if (length < 0) fail<ValueError>(fn, "length must be >= 0 but is ", length);
  segments_.resize(static_cast<size_t>(ranks));
  const int64_t p = ranks;
  for (int64_t r = 0; r < p; ++r) {
    auto& segs = segments_[static_cast<size_t>(r)];
    if (split == Split::contiguous) {
      segs.push_back({boundary(length, p, r), boundary(length, p, r + 1) - boundary(length, p, r)});
    } else {
      for (const int64_t c : {r, 2 * p - 1 - r})
        segs.push_back({boundary(length, 2 * p, c),
                        boundary(length, 2 * p, c + 1) - boundary(length, 2 * p, c)});
    }
  }
}

const std::vector<Segment>& SequenceLayout::segments(int rank) const {
  if (rank < 0 || rank >= ranks_)
    fail<ValueError>("dist::SequenceLayout::segments", "rank ", rank, " is not in [0, ", ranks_,
                     ")");
  return segments_[static_cast<size_t>(rank)];
}

int64_t SequenceLayout::local_length(int rank) const {
  int64_t n = 0;
  for (const Segment& s : segments(rank)) n += s.size;
  return n;
}

Tensor shard(ConstTensorView global, const SequenceLayout& layout, int rank) {
  const char* fn = "dist::shard";
  check_sequence_tensor(fn, "global", global);
  if (global.dim(2) != layout.length())
    fail<ShapeError>(fn, "global has shape ", global.shape().str(), " but the layout has ",
                     layout.length(), " positions (dimension 2)");
  Tensor local(Shape{global.dim(0), global.dim(1), layout.local_length(rank), global.dim(3)});
  int64_t at = 0;
  for (const Segment& s : layout.segments(rank)) {
    copy(global.slice(2, s.start, s.start + s.size), local.view().slice(2, at, at + s.size));
    at += s.size;
  }
  return local;
}

void unshard(ConstTensorView local, const SequenceLayout& layout, int rank, TensorView global) {
  const char* fn = "dist::unshard";
  check_sequence_tensor(fn, "local", local);
  internal::check_rank(fn, "global", global, 4);
  const Shape want{local.dim(0), local.dim(1), layout.length(), local.dim(3)};
  internal::check_shape(fn, "global", global, want, "(B, H, N, D) of local");
  if (local.dim(2) != layout.local_length(rank))
    fail<ShapeError>(fn, "local has shape ", local.shape().str(), " but rank ", rank, " holds ",
                     layout.local_length(rank), " positions");
  int64_t at = 0;
  for (const Segment& s : layout.segments(rank)) {
    copy(local.slice(2, at, at + s.size), global.slice(2, s.start, s.start + s.size));
    at += s.size;
  }
}

Tensor allgather_sequence(const Communicator& comm, ConstTensorView local,
                          const SequenceLayout& layout) {
  const char* fn = "dist::allgather_sequence";
  comm.agree_on([&] {
    check_sequence_tensor(fn, "local", local);
    if (layout.ranks() != comm.size())
      fail<ValueError>(fn, "the layout is for ", layout.ranks(), " ranks but the communicator has ",
                       comm.size());
    if (local.dim(2) != layout.local_length(comm.rank()))
      fail<ShapeError>(fn, "local has shape ", local.shape().str(), " but this rank holds ",
                       layout.local_length(comm.rank()), " positions");
  });
  const int64_t B = local.dim(0), H = local.dim(1), D = local.dim(3);
  const int64_t dims[3] = {B, H, D};
  const std::vector<int64_t> all = comm.allgather(dims);
  // Every rank sees every rank's dimensions, so every rank throws the same error here.
  for (size_t r = 1; r < static_cast<size_t>(comm.size()); ++r)
    if (!std::equal(all.begin(), all.begin() + 3, all.begin() + static_cast<std::ptrdiff_t>(r * 3)))
      fail<ShapeError>(fn, "every rank must pass the same B, H and D, but rank ", r, " has ",
                       all[r * 3], ", ", all[r * 3 + 1], ", ", all[r * 3 + 2], " and rank 0 has ",
                       all[0], ", ", all[1], ", ", all[2]);
  const Tensor mine = Tensor::copy_of(local);
  std::vector<int64_t> recv_counts(static_cast<size_t>(comm.size()));
  int64_t total = 0;
  for (int r = 0; r < comm.size(); ++r)
    total += recv_counts[static_cast<size_t>(r)] = B * H * layout.local_length(r) * D;
  std::vector<float> recv(static_cast<size_t>(total));
  comm.allgatherv(std::span<const float>(mine.data(), static_cast<size_t>(mine.numel())), recv,
                  recv_counts);
  Tensor global(Shape{B, H, layout.length(), D});
  int64_t at = 0;
  for (int r = 0; r < comm.size(); ++r) {
    const ConstTensorView part(recv.data() + at, Shape{B, H, layout.local_length(r), D});
    unshard(part, layout, r, global.view());
    at += recv_counts[static_cast<size_t>(r)];
  }
  return global;
}

}  // namespace attn::dist
