/*
 * PTE Lab real-kernel probe: runs micro/mmap-touch cases on the running kernel (pnpm validate,
 * pte-lab calibrate).
 *
 * Usage: probe <test-dir> < cases
 * Each input line is one case, space-separated key=value pairs (the micro/mmap-touch keys):
 *   id=<name> backing=file|anon share=private|shared size=<bytes> cache=written|readback|cold
 *   io_chunk=<bytes> advice=normal|random|sequential|willneed|hugepage
 *   pattern=seq|reverse|stride:N|per2m|random:F|hotset:F:R access=read|write seed=<n>
 *   passes=<n> (touch the whole order n times; passes after the first are timed apart: retouch_ms)
 *   fork=on|off (after the touches, time fork() of a child that _exits at once, and its reaping: fork_ms)
 * Each case runs in a forked child (a fresh address space and a fresh struct file) and prints one
 * JSON line on stdout: minor/major faults from getrusage() around the touch loop only, the
 * mapping's Rss/Anonymous/AnonHugePages/FilePmdMapped (kB) from /proc/self/smaps, page-cache
 * residency before and after the loop (mincore), and the folio orders of the mapped pages
 * (/proc/self/pagemap + /proc/kpageflags, root only).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_THP 22

struct kase {
	char id[128];
	char backing[8], share[8], cache[16], advice[16], pattern[64], access[8];
	/* If set, the touch order is written here (little-endian 32-bit page indices) for the model. */
	char order_out[4096];
	size_t size, io_chunk;
	uint64_t seed;
	unsigned passes;
	int fork;
};

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1e3 + (b->tv_nsec - a->tv_nsec) / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "probe: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* splitmix64: seeded, portable */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static uint32_t rng_below(uint32_t n) { return (uint32_t)(rng_next() % n); }

/* Build the touch order (page indices) for the pattern; returns the count. */
static uint32_t *build_pattern(const char *pat, uint32_t pages, size_t *count)
{
	uint32_t *out = NULL;
	size_t n = 0;
	if (!strcmp(pat, "seq") || !strcmp(pat, "reverse")) {
		out = malloc(sizeof(uint32_t) * pages);
		for (uint32_t i = 0; i < pages; i++) out[i] = pat[0] == 's' ? i : pages - 1 - i;
		n = pages;
	} else if (!strncmp(pat, "stride:", 7) || !strcmp(pat, "per2m")) {
		uint32_t step = pat[0] == 'p' ? 512 : (uint32_t)strtoul(pat + 7, NULL, 10);
		if (step < 1) step = 1;
		n = (pages + step - 1) / step;
		out = malloc(sizeof(uint32_t) * n);
		for (size_t i = 0; i < n; i++) out[i] = (uint32_t)(i * step);
	} else if (!strncmp(pat, "random:", 7) || !strncmp(pat, "hotset:", 7)) {
		double f = strtod(pat + 7, NULL);
		unsigned long repeats = 1;
		if (pat[0] == 'h') {
			const char *c = strchr(pat + 7, ':');
			repeats = c ? strtoul(c + 1, NULL, 10) : 1;
		}
		uint32_t hot = (uint32_t)(f * pages + 0.5);
		if (hot < 1) hot = 1;
		if (hot > pages) hot = pages;
		uint32_t *perm = malloc(sizeof(uint32_t) * pages);
		for (uint32_t i = 0; i < pages; i++) perm[i] = i;
		for (uint32_t i = 0; i < hot; i++) { /* partial Fisher-Yates picks the hot set */
			uint32_t j = i + rng_below(pages - i);
			uint32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
		}
		n = (size_t)hot * repeats;
		out = malloc(sizeof(uint32_t) * n);
		for (unsigned long r = 0; r < repeats; r++) {
			if (r > 0)
				for (uint32_t i = 0; i + 1 < hot; i++) { /* fresh order per pass */
					uint32_t j = i + rng_below(hot - i);
					uint32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
				}
			memcpy(out + r * hot, perm, sizeof(uint32_t) * hot);
		}
		free(perm);
	} else {
		fprintf(stderr, "probe: unknown pattern '%s'\n", pat);
		exit(2);
	}
	*count = n;
	return out;
}

static void fill_buf(char *buf, size_t n, uint64_t salt)
{
	for (size_t i = 0; i < n; i += 8) { uint64_t v = salt ^ (i * 0x9e3779b97f4a7c15ULL) ^ 1; memcpy(buf + i, &v, 8); }
}

/* Create the file and bring it into the state `cache` says. */
static int prepare_file(const struct kase *k, const char *path)
{
	unlink(path);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) die("open");
	size_t chunk = k->io_chunk ? k->io_chunk : (1UL << 20);
	if (strcmp(k->cache, "written")) chunk = 1UL << 20; /* how the data is written does not matter when evicted */
	char *buf = aligned_alloc(PAGE, chunk);
	for (size_t off = 0; off < k->size; off += chunk) {
		size_t len = k->size - off < chunk ? k->size - off : chunk;
		fill_buf(buf, len, off);
		if (write(fd, buf, len) != (ssize_t)len) die("write");
	}
	if (fsync(fd)) die("fsync");
	if (strcmp(k->cache, "written")) {
		/* evict: clean pages are dropped by DONTNEED (twice: the first pass can race with writeback) */
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}
	if (!strcmp(k->cache, "readback")) {
		size_t rc = k->io_chunk ? k->io_chunk : (128UL << 10);
		free(buf);
		buf = aligned_alloc(PAGE, rc);
		lseek(fd, 0, SEEK_SET);
		for (;;) {
			ssize_t r = read(fd, buf, rc);
			if (r < 0) die("read");
			if (r == 0) break;
		}
	}
	free(buf);
	close(fd);
	return 0;
}

/* Pages of [addr, addr+len) resident in the page cache / present (mincore). */
static size_t resident(void *addr, size_t len)
{
	size_t pages = len / PAGE, n = 0;
	unsigned char *v = malloc(pages);
	if (mincore(addr, len, v)) die("mincore");
	for (size_t i = 0; i < pages; i++) n += v[i] & 1;
	free(v);
	return n;
}

/* Rss, Anonymous, AnonHugePages, FilePmdMapped (kB) of the smaps entry starting at addr. */
static void smaps_of(void *addr, long out[4])
{
	static const char *keys[4] = {"Rss:", "Anonymous:", "AnonHugePages:", "FilePmdMapped:"};
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f) die("smaps");
	int in = 0;
	for (int i = 0; i < 4; i++) out[i] = -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) { in = lo == (unsigned long)addr; continue; }
		if (!in) continue;
		for (int i = 0; i < 4; i++)
			if (!strncmp(line, keys[i], strlen(keys[i]))) out[i] = strtol(line + strlen(keys[i]), NULL, 10);
	}
	fclose(f);
}

/*
 * Folio orders of the pages mapped in [addr, addr+len): hist[o] = mapped pages whose folio has
 * order o (o = 0..10); returns 0, or -1 when pagemap/kpageflags are not readable.
 */
static int folio_orders(void *addr, size_t len, size_t hist[11])
{
	int pm = open("/proc/self/pagemap", O_RDONLY), kf = open("/proc/kpageflags", O_RDONLY);
	if (pm < 0 || kf < 0) { if (pm >= 0) close(pm); if (kf >= 0) close(kf); return -1; }
	size_t pages = len / PAGE;
	uint64_t *ent = malloc(8 * pages);
	if (pread(pm, ent, 8 * pages, (off_t)((uintptr_t)addr / PAGE) * 8) != (ssize_t)(8 * pages)) { close(pm); close(kf); free(ent); return -1; }
	uint64_t cur_lo = 1, cur_hi = 0; /* pfn range of the last folio seen */
	int cur_order = 0;
	uint64_t fl[1024];
	for (size_t i = 0; i < pages; i++) {
		uint64_t e = ent[i];
		if (!(e >> 63)) continue; /* not present */
		uint64_t pfn = e & ((1ULL << 55) - 1);
		if (pfn == 0) { close(pm); close(kf); free(ent); return -1; } /* pfns hidden (not root) */
		if (pfn >= cur_lo && pfn < cur_hi) { hist[cur_order]++; continue; }
		uint64_t f;
		if (pread(kf, &f, 8, (off_t)pfn * 8) != 8) continue;
		if (!(f & (1ULL << KPF_COMPOUND_HEAD)) && !(f & (1ULL << KPF_COMPOUND_TAIL))) { hist[0]++; continue; }
		/* find the head: scan back at most 1023 pfns */
		uint64_t base = pfn >= 1023 ? pfn - 1023 : 0;
		ssize_t got = pread(kf, fl, 8 * (pfn - base + 1), (off_t)base * 8);
		if (got <= 0) continue;
		uint64_t head = pfn;
		while (head > base && !(fl[head - base] & (1ULL << KPF_COMPOUND_HEAD))) head--;
		/* count tails after the head */
		got = pread(kf, fl, sizeof fl, (off_t)(head + 1) * 8);
		uint64_t n = 1;
		for (ssize_t j = 0; j < got / 8 && (fl[j] & (1ULL << KPF_COMPOUND_TAIL)); j++) n++;
		int o = 0;
		while ((1ULL << (o + 1)) <= n && o < 10) o++;
		cur_lo = head; cur_hi = head + n; cur_order = o;
		hist[o]++;
	}
	free(ent);
	close(pm);
	close(kf);
	return 0;
}

static int advice_of(const char *a)
{
	if (!strcmp(a, "normal")) return MADV_NORMAL;
	if (!strcmp(a, "random")) return MADV_RANDOM;
	if (!strcmp(a, "sequential")) return MADV_SEQUENTIAL;
	if (!strcmp(a, "willneed")) return MADV_WILLNEED;
	if (!strcmp(a, "hugepage")) return MADV_HUGEPAGE;
	fprintf(stderr, "probe: unknown advice '%s'\n", a);
	exit(2);
}

static void run_case(const struct kase *k, const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.dat", dir, k->id);
	int file = !strcmp(k->backing, "file");
	int shared = !strcmp(k->share, "shared");
	int write = !strcmp(k->access, "write");
	int fd = -1;
	if (file) {
		prepare_file(k, path);
		fd = open(path, O_RDWR);
		if (fd < 0) die("open");
	}
	rng_state = k->seed;
	size_t count;
	uint32_t *order = build_pattern(k->pattern, (uint32_t)(k->size / PAGE), &count);
	if (k->order_out[0]) {
		FILE *of = fopen(k->order_out, "wb");
		if (!of || fwrite(order, sizeof *order, count, of) != count || fclose(of)) die("order_out");
	}

	int prot = PROT_READ | (write || !file ? PROT_WRITE : 0);
	int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | (file ? 0 : MAP_ANONYMOUS);
	/* Align the mapping to 2 MiB, as the model's VMAs are (so PMD mappings are possible). */
	size_t span = k->size + (2UL << 20);
	char *resv = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED) die("mmap reserve");
	char *want = (char *)(((uintptr_t)resv + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	char *p = mmap(want, k->size, prot, flags | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) die("mmap");
	if (want > resv) munmap(resv, want - resv);
	if (want + k->size < resv + span) munmap(want + k->size, resv + span - (want + k->size));
	if (strcmp(k->advice, "normal") && madvise(p, k->size, advice_of(k->advice))) die("madvise");

	size_t cached_before = file ? resident(p, k->size) : 0;
	struct rusage r0, r1;
	struct timespec t0, t1;
	volatile char sink = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	getrusage(RUSAGE_SELF, &r0);
	if (write)
		for (size_t i = 0; i < count; i++) p[(size_t)order[i] * PAGE] = (char)i;
	else
		for (size_t i = 0; i < count; i++) sink += ((volatile char *)p)[(size_t)order[i] * PAGE];
	getrusage(RUSAGE_SELF, &r1);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	/* Passes after the first: the pages are mapped, so each access costs a TLB lookup or walk. */
	struct timespec p0, p1;
	struct rusage q0, q1;
	clock_gettime(CLOCK_MONOTONIC, &p0);
	getrusage(RUSAGE_SELF, &q0);
	for (unsigned pass = 1; pass < k->passes; pass++) {
		if (write)
			for (size_t i = 0; i < count; i++) p[(size_t)order[i] * PAGE] = (char)(i + pass);
		else
			for (size_t i = 0; i < count; i++) sink += ((volatile char *)p)[(size_t)order[i] * PAGE];
	}
	getrusage(RUSAGE_SELF, &q1);
	clock_gettime(CLOCK_MONOTONIC, &p1);
	(void)sink;

	/* fork(): copy_page_range of the mapping; the child exits at once (its zap), the parent reaps it. */
	double fork_ms = -1;
	if (k->fork) {
		struct timespec f0, f1;
		clock_gettime(CLOCK_MONOTONIC, &f0);
		pid_t c = fork();
		if (c < 0) die("fork");
		if (c == 0) _exit(0);
		int st;
		if (waitpid(c, &st, 0) < 0) die("waitpid");
		clock_gettime(CLOCK_MONOTONIC, &f1);
		fork_ms = ms_between(&f0, &f1);
	}

	long sm[4];
	smaps_of(p, sm);
	size_t mapped = resident(p, k->size); /* for a file mapping, mincore reports the page cache */
	size_t hist[11] = {0};
	int have_folios = folio_orders(p, k->size, hist) == 0;
	size_t present = 0;
	for (int o = 0; o < 11; o++) present += hist[o];

	printf("{\"id\":\"%s\",\"backing\":\"%s\",\"share\":\"%s\",\"size\":%zu,\"cache\":\"%s\",\"io_chunk\":%zu,"
	       "\"advice\":\"%s\",\"pattern\":\"%s\",\"access\":\"%s\",\"seed\":%" PRIu64 ",\"touches\":%zu,"
	       "\"minor\":%ld,\"major\":%ld,\"rss_kb\":%ld,\"anon_kb\":%ld,\"anon_huge_kb\":%ld,\"file_pmd_kb\":%ld,"
	       "\"cached_before\":%zu,\"cached_after\":%zu,\"loop_ms\":%.3f",
	       k->id, k->backing, k->share, k->size, k->cache, k->io_chunk, k->advice, k->pattern, k->access, k->seed,
	       count, r1.ru_minflt - r0.ru_minflt, r1.ru_majflt - r0.ru_majflt, sm[0], sm[1], sm[2], sm[3],
	       cached_before, file ? mapped : 0, ms_between(&t0, &t1));
	if (k->passes > 1)
		printf(",\"passes\":%u,\"retouch_ms\":%.3f,\"retouch_faults\":%ld", k->passes, ms_between(&p0, &p1),
		       (q1.ru_minflt - q0.ru_minflt) + (q1.ru_majflt - q0.ru_majflt));
	if (k->fork) printf(",\"fork_ms\":%.3f", fork_ms);
	if (have_folios) {
		printf(",\"present_pages\":%zu,\"folio_pages_by_order\":{", present);
		int first = 1;
		for (int o = 0; o < 11; o++)
			if (hist[o]) { printf("%s\"%d\":%zu", first ? "" : ",", o, hist[o]); first = 0; }
		printf("}");
	}
	/* The mapping's teardown, timed: munmap zaps its PTEs, frees what it alone held and its page tables. */
	struct timespec u0, u1;
	clock_gettime(CLOCK_MONOTONIC, &u0);
	munmap(p, k->size);
	clock_gettime(CLOCK_MONOTONIC, &u1);
	printf(",\"unmap_ms\":%.3f}\n", ms_between(&u0, &u1));
	fflush(stdout);
	if (fd >= 0) close(fd);
	if (file) unlink(path);
	free(order);
}

static size_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (!strcasecmp(end, "k") || !strcasecmp(end, "kib")) v *= 1024;
	else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib")) v *= 1048576;
	else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib")) v *= 1073741824.0;
	return (size_t)v;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: probe <test-dir> < cases\n");
		return 2;
	}
	char line[4096];
	while (fgets(line, sizeof line, stdin)) {
		struct kase k = {.backing = "file", .share = "private", .cache = "written", .advice = "normal",
				 .pattern = "seq", .access = "read", .size = 64UL << 20, .io_chunk = 0, .seed = 1,
				 .passes = 1, .fork = 0};
		snprintf(k.id, sizeof k.id, "case");
		int any = 0;
		for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
			char *eq = strchr(tok, '=');
			if (!eq) continue;
			*eq = 0;
			const char *v = eq + 1;
			any = 1;
#define STR(name) else if (!strcmp(tok, #name)) snprintf(k.name, sizeof k.name, "%s", v)
			if (0) {}
			STR(id); STR(backing); STR(share); STR(cache); STR(advice); STR(pattern); STR(access); STR(order_out);
			else if (!strcmp(tok, "size")) k.size = parse_size(v);
			else if (!strcmp(tok, "io_chunk")) k.io_chunk = parse_size(v);
			else if (!strcmp(tok, "seed")) k.seed = strtoull(v, NULL, 10);
			else if (!strcmp(tok, "passes")) k.passes = (unsigned)strtoul(v, NULL, 10);
			else if (!strcmp(tok, "fork")) k.fork = !strcmp(v, "on");
			else { fprintf(stderr, "probe: unknown key '%s'\n", tok); return 2; }
		}
		if (!any) continue;
		if (!strcmp(k.cache, "warm")) snprintf(k.cache, sizeof k.cache, "written");
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) die("fork");
		if (pid == 0) {
			run_case(&k, argv[1]);
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "probe: case %s failed (status %d)\n", k.id, st);
			return 1;
		}
	}
	return 0;
}
