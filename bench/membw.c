/* bench/membw.c: memory read bandwidth, as used by bench/compare.
 * Sums a 1 GiB array of uint64 (far larger than any cache) REPS times with
 * OMP_NUM_THREADS threads; prints the best and the median GB/s (1e9 bytes/s).
 * Build: cc -O3 -mavx2 -fopenmp bench/membw.c -o membw */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
int main(int argc, char **argv) {
  size_t bytes = (size_t)1 << 30;
  int reps = argc > 1 ? atoi(argv[1]) : 7;
  if (reps < 1 || reps > 64) reps = 7;
  size_t n = bytes / sizeof(uint64_t);
  uint64_t *a = aligned_alloc(64, bytes);
  if (!a) { perror("alloc"); return 1; }
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) a[i] = i * 2654435761u;
  double gbs[64];
  uint64_t sink = 0;
  for (int r = 0; r < reps; r++) {
    uint64_t s = 0;
    double t0 = now();
#pragma omp parallel for schedule(static) reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += a[i];
    double t1 = now();
    sink ^= s;
    gbs[r] = bytes / (t1 - t0) / 1e9;
  }
  qsort(gbs, reps, sizeof(double), cmp);
  printf("{\"threads\":%d,\"bytes\":%zu,\"reps\":%d,\"best_gbs\":%.2f,\"median_gbs\":%.2f,\"sink\":%llu}\n",
         omp_get_max_threads(), bytes, reps, gbs[reps - 1], gbs[reps / 2], (unsigned long long)(sink & 1));
  free(a);
  return 0;
}
