// validate/pft.c: the real-kernel side of the several-CPU validation (pnpm validate). Faulting
// threads write every page of their own anonymous region once (4 KiB faults: no MADV_HUGEPAGE,
// THP is madvise-only here); the wall time from a common start to the last faulter's end is the
// makespan. Modes:
//   t1   one faulting thread
//   t2   two faulting threads of one process (one mm: they share mmap_lock)
//   p2   two faulting processes of one thread each (two mms)
//   t1w  one faulting thread and a writer thread of the same process mapping and unmapping
//        64 KiB with MAP_POPULATE until the faulter is done (the writer takes mmap_lock for write)
//   p1w  the same writer in another process
// Prints one JSON line: {"mode":..., "ns":makespan, "faults":minor faults of the faulters,
// "writer_rounds":n}.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long pages;
static const long PAGE = 4096;

struct shared {
  atomic_int ready;
  atomic_int go;
  atomic_int faulters_done;
  atomic_long writer_rounds;
  uint64_t start_ns;
  uint64_t end_ns[2];
  long faults[2];
};
static struct shared *sh;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void wait_go(void) {
  atomic_fetch_add(&sh->ready, 1);
  while (!atomic_load(&sh->go)) {
  }
}

static long thread_minflt(void) {
  struct rusage u;
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_minflt;
}

static void fault_region(int id) {
  char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  wait_go();
  long f0 = thread_minflt();
  for (long i = 0; i < pages; i++) p[i * PAGE] = 1;
  sh->faults[id] = thread_minflt() - f0;
  sh->end_ns[id] = now_ns();
  atomic_fetch_add(&sh->faulters_done, 1);
  munmap(p, pages * PAGE);
}

static void *faulter(void *arg) {
  fault_region((int)(intptr_t)arg);
  return NULL;
}

static void writer_loop(int faulters) {
  wait_go();
  while (atomic_load(&sh->faulters_done) < faulters) {
    char *p = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      exit(1);
    }
    munmap(p, 16 * PAGE);
    atomic_fetch_add(&sh->writer_rounds, 1);
  }
}

static void *writer(void *arg) {
  writer_loop((int)(intptr_t)arg);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: pft t1|t2|p2|t1w|p1w pages\n");
    return 2;
  }
  const char *mode = argv[1];
  pages = atol(argv[2]);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  memset(sh, 0, sizeof *sh);
  int faulters = (!strcmp(mode, "t2") || !strcmp(mode, "p2")) ? 2 : 1;
  int writer_on = !strcmp(mode, "t1w") || !strcmp(mode, "p1w");
  int procs = !strcmp(mode, "p2") || !strcmp(mode, "p1w");
  int expected = faulters + writer_on;
  pthread_t th[3];
  int nth = 0;
  pid_t kids[2];
  int nkids = 0;
  if (!procs) {
    for (int i = 0; i < faulters; i++) pthread_create(&th[nth++], NULL, faulter, (void *)(intptr_t)i);
    if (writer_on) pthread_create(&th[nth++], NULL, writer, (void *)(intptr_t)faulters);
  } else {
    for (int i = 0; i < faulters; i++) {
      pid_t k = fork();
      if (k == 0) {
        fault_region(i);
        _exit(0);
      }
      kids[nkids++] = k;
    }
    if (writer_on) {
      pid_t k = fork();
      if (k == 0) {
        writer_loop(faulters);
        _exit(0);
      }
      kids[nkids++] = k;
    }
  }
  while (atomic_load(&sh->ready) < expected) {
  }
  sh->start_ns = now_ns();
  atomic_store(&sh->go, 1);
  for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < nkids; i++) waitpid(kids[i], NULL, 0);
  uint64_t end = sh->end_ns[0];
  if (faulters == 2 && sh->end_ns[1] > end) end = sh->end_ns[1];
  printf("{\"mode\":\"%s\",\"ns\":%llu,\"faults\":%ld,\"writer_rounds\":%ld}\n", mode,
         (unsigned long long)(end - sh->start_ns), sh->faults[0] + (faulters == 2 ? sh->faults[1] : 0),
         atomic_load(&sh->writer_rounds));
  return 0;
}
