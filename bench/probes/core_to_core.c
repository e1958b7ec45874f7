// SPDX-License-Identifier: MIT
// What moving work between two cores costs on this machine (docs/kernels.md, "Small shapes on two
// threads as data-parallel replicas"): an empty OpenMP fork/join of two threads, a cache line's
// round trip between two threads (one atomic passed back and forth), and a 96 KiB buffer written
// by one thread and then read, or overwritten, by the other, beside the same done on one thread.
// Not part of the build; pin the two threads to the cores you ask about with taskset:
//   gcc -O3 -march=native -fopenmp bench/probes/core_to_core.c -o /tmp/core_to_core
//   taskset -c 0,1 /tmp/core_to_core
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

enum { kForkJoins = 100000, kPingPongs = 1000000, kBytes = 96 * 1024, kRounds = 2000 };

static _Alignas(64) atomic_int flag;
static float* buf;
// Reads sum the buffer's bits as integers, which the compiler vectorises (a float sum it may not
// reorder would be one chain of dependent adds, slower than the memory it measures).
static unsigned sum_bits(void) {
  const unsigned* u = (const unsigned*)buf;
  unsigned s = 0;
  for (int j = 0; j < kBytes / 4; ++j) s += u[j];
  return s;
}
static double other_read_s, other_write_s;
static volatile unsigned sink;

static void* ping_partner(void* arg) {
  (void)arg;
  for (int i = 0; i < kPingPongs; ++i) {
    while (atomic_load_explicit(&flag, memory_order_acquire) != 1) {
    }
    atomic_store_explicit(&flag, 0, memory_order_release);
  }
  return NULL;
}

// Each round: wait for the main thread's turn to end, then read the buffer (even rounds) or
// overwrite it (odd rounds), timing it, and hand the turn back.
static void* buffer_partner(void* arg) {
  (void)arg;
  unsigned s = 0;
  for (int r = 0; r < kRounds; ++r) {
    while (atomic_load(&flag) != 1) {
    }
    const double t0 = now();
    if (r % 2 == 0)
      s += sum_bits();
    else
      for (int j = 0; j < kBytes / 4; ++j) buf[j] = (float)(r + j);
    (r % 2 == 0 ? &other_read_s : &other_write_s)[0] += now() - t0;
    atomic_store(&flag, 0);
  }
  sink = s;
  return NULL;
}

int main(void) {
  volatile int x = 0;
  double t0 = now();
  for (int i = 0; i < kForkJoins; ++i) {
#pragma omp parallel num_threads(2)
    { x++; }
  }
  printf("OpenMP fork/join, 2 threads:          %.2f us\n", (now() - t0) / kForkJoins * 1e6);

  pthread_t t;
  pthread_create(&t, NULL, ping_partner, NULL);
  t0 = now();
  for (int i = 0; i < kPingPongs; ++i) {
    atomic_store_explicit(&flag, 1, memory_order_release);
    while (atomic_load_explicit(&flag, memory_order_acquire) != 0) {
    }
  }
  printf("cache line round trip between threads: %.0f ns\n", (now() - t0) / kPingPongs * 1e9);
  pthread_join(t, NULL);

  buf = aligned_alloc(64, kBytes);
  pthread_create(&t, NULL, buffer_partner, NULL);
  double own_write_s = 0.0;
  for (int r = 0; r < kRounds; ++r) {  // write, then let the other thread read or overwrite
    t0 = now();
    for (int j = 0; j < kBytes / 4; ++j) buf[j] = (float)(r - j);
    own_write_s += now() - t0;
    atomic_store(&flag, 1);
    while (atomic_load(&flag) != 0) {
    }
  }
  pthread_join(t, NULL);
  unsigned s = 0;
  t0 = now();
  for (int r = 0; r < kRounds; ++r) s += sum_bits();
  const double local_read_s = now() - t0;
  t0 = now();
  for (int r = 0; r < kRounds; ++r)
    for (int j = 0; j < kBytes / 4; ++j) buf[j] = (float)(r * j);
  const double local_write_s = now() - t0;
  sink = s;
  const double half = kRounds / 2.0;
  printf("96 KiB, the other thread reads what this one wrote:      %.1f us (same thread: %.1f us)\n",
         other_read_s / half * 1e6, local_read_s / kRounds * 1e6);
  printf("96 KiB, the other thread overwrites what this one wrote: %.1f us (same thread: %.1f us)\n",
         other_write_s / half * 1e6, local_write_s / kRounds * 1e6);
  printf("96 KiB, this thread overwrites what the other touched:   %.1f us\n",
         own_write_s / kRounds * 1e6);
  free(buf);
  return 0;
}
