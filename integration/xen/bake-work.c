/* bake-work: the bake-off's workload, run inside a guest (static, no libc beyond glibc's static one).
 * Replays a working set over time: a schedule of working-set sizes (KiB, one a line, one every STEP
 * seconds; integration/xen/bake-trace.csv, scaled from Google cluster-data 2011), of which ANON is
 * anonymous memory (swap is its only way out) and the rest file pages read through the page cache of
 * a block device (mmap of DEV at OFFSET: refaults are real reads). At a fixed rate it runs operations;
 * an operation touches PAGES random pages of one of the two sets (chosen in proportion to their
 * sizes; 80 % of touches go to the first 20 % of a set, its hot part), writing to anonymous pages and
 * reading file pages, and is timed. When a set grows, its new part is touched (anonymous) or read
 * (file, in 1 MiB reads) at once: an application that allocates or opens more; when the anonymous set shrinks, its tail is freed (MADV_DONTNEED);
 * file pages stay cached until reclaimed.
 * At the end it prints one line:
 *   BAKE-RESULT ops=N planned=N p50_us= p99_us= max_us= some_us= full_us= pgmajfault= pswpin= pswpout=
 *               refault_anon= refault_file= grow_ms= seconds=
 * (PSI totals and vmstat counters as differences over the run.)
 * Usage: bake-work -s SCHEDULE -t STEP_S -n SAMPLES -a ANON_FRACTION -d DEV -o OFFSET_MIB
 *                  [-r OPS_PER_S] [-k PAGES] [-S SEED]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng;
static uint64_t next(void) {   /* xorshift64* */
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}
/* a page index in [0, n): 80 % in the first fifth (the hot part), 20 % anywhere */
static size_t pick(size_t n) {
    size_t hot = n / 5 ? n / 5 : 1;
    if (next() % 100 < 80) return next() % hot;
    return next() % n;
}

static long long psi(const char *kind) {   /* /proc/pressure/memory "some|full ... total=N" (µs) */
    FILE *f = fopen("/proc/pressure/memory", "r");
    char line[256];
    long long v = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, kind, strlen(kind)) == 0) {
            char *t = strstr(line, "total=");
            if (t) v = atoll(t + 6);
        }
    }
    fclose(f);
    return v;
}
static long long vmstat(const char *key) {
    FILE *f = fopen("/proc/vmstat", "r");
    char name[128];
    long long v, r = -1;
    if (!f) return -1;
    while (fscanf(f, "%127s %lld", name, &v) == 2)
        if (strcmp(name, key) == 0) { r = v; break; }
    fclose(f);
    return r;
}
static int cmp(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *sched = 0, *dev = 0;
    double step = 4, frac = 0.5, rate = 40;
    long samples = 0, offset_mib = 0, pages = 16;
    uint64_t seed = 1;
    int c;
    while ((c = getopt(argc, argv, "s:t:n:a:d:o:r:k:S:")) != -1) {
        switch (c) {
        case 's': sched = optarg; break;
        case 't': step = atof(optarg); break;
        case 'n': samples = atol(optarg); break;
        case 'a': frac = atof(optarg); break;
        case 'd': dev = optarg; break;
        case 'o': offset_mib = atol(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'k': pages = atol(optarg); break;
        case 'S': seed = strtoull(optarg, 0, 10); break;
        default: fprintf(stderr, "bad option\n"); return 64;
        }
    }
    if (!sched || !dev || step <= 0 || rate <= 0 || pages <= 0 || frac < 0 || frac > 1) {
        fprintf(stderr, "usage: bake-work -s SCHEDULE -t STEP -n SAMPLES -a ANON -d DEV -o OFFSET_MIB [-r RATE] [-k PAGES] [-S SEED]\n");
        return 64;
    }
    /* the schedule: working set (KiB) per sample */
    FILE *sf = fopen(sched, "r");
    if (!sf) { perror(sched); return 66; }
    size_t cap = 1024, n = 0;
    double *ws = malloc(cap * sizeof *ws);
    double v;
    while (fscanf(sf, "%lf", &v) == 1) {
        if (n == cap) ws = realloc(ws, (cap *= 2) * sizeof *ws);
        ws[n++] = v;
    }
    fclose(sf);
    if (samples <= 0 || (size_t)samples > n) samples = n;
    if (samples == 0) { fprintf(stderr, "empty schedule\n"); return 65; }
    size_t amax = 0, fmax = 0;
    for (long i = 0; i < samples; i++) {
        size_t a = (size_t)(ws[i] * 1024 * frac) / PAGE, f = (size_t)(ws[i] * 1024 * (1 - frac)) / PAGE;
        if (a > amax) amax = a;
        if (f > fmax) fmax = f;
    }
    rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (const char *p = sched; *p; p++) rng = (rng ^ (unsigned char)*p) * 1099511628211ULL;
    if (!rng) rng = 1;

    unsigned char *anon = amax ? mmap(0, amax * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) : 0;
    if (anon == MAP_FAILED) { perror("mmap anon"); return 71; }
    volatile unsigned char *file = 0;
    int filefd = -1;
    static char buf[1 << 20];
    if (fmax) {
        int fd = open(dev, O_RDONLY);
        if (fd < 0) { perror(dev); return 66; }
        void *m = mmap(0, fmax * PAGE, PROT_READ, MAP_SHARED, fd, (off_t)offset_mib << 20);
        if (m == MAP_FAILED) { perror("mmap file"); return 71; }
        file = m;
        filefd = fd;
    }

    long long some0 = psi("some"), full0 = psi("full"), maj0 = vmstat("pgmajfault");
    long long in0 = vmstat("pswpin"), out0 = vmstat("pswpout");
    long long ra0 = vmstat("workingset_refault_anon"), rf0 = vmstat("workingset_refault_file");
    double duration = samples * step;
    size_t planned = (size_t)(duration * rate);
    float *lat = malloc((planned + 1) * sizeof *lat);
    size_t ops = 0, ahave = 0, fhave = 0;
    double grow = 0, maxlat = 0;
    unsigned sink = 0;
    long cur = -1;
    double t0 = now();
    for (size_t i = 0; i < planned; i++) {
        double due = t0 + i / rate, t = now();
        if (t >= t0 + duration) break;
        if (due > t) {
            struct timespec ts = { (time_t)(due - t), (long)((due - t - (time_t)(due - t)) * 1e9) };
            nanosleep(&ts, 0);
        }
        long s = (long)((now() - t0) / step);
        if (s >= samples) break;
        if (s != cur) {   /* a new sample: the working set's size changes */
            cur = s;
            size_t a = (size_t)(ws[s] * 1024 * frac) / PAGE, f = (size_t)(ws[s] * 1024 * (1 - frac)) / PAGE;
            double g = now();
            if (a > ahave) for (size_t p = ahave; p < a; p++) anon[p * PAGE] = (unsigned char)(p | 1);
            else if (a < ahave) madvise(anon + a * PAGE, (ahave - a) * PAGE, MADV_DONTNEED);
            /* the file set's new part is read through the page cache in 1 MiB reads (as a program
             * reading a file would; faulting it in a page at a time costs a disk read a page) */
            for (size_t p = fhave; p < f; ) {
                size_t len = (f - p) * PAGE < sizeof buf ? (f - p) * PAGE : sizeof buf;
                ssize_t got = pread(filefd, buf, len, ((off_t)offset_mib << 20) + (off_t)(p * PAGE));
                if (got <= 0) break;
                p += (size_t)got / PAGE;
            }
            grow += now() - g;
            ahave = a; fhave = f;
        }
        size_t total = ahave + fhave;
        if (!total) continue;
        double a0 = now();
        int isanon = next() % total < ahave;
        for (long k = 0; k < pages; k++) {
            if (isanon) anon[pick(ahave) * PAGE + (next() % PAGE & ~7UL)] += 1;
            else sink += file[pick(fhave) * PAGE];
        }
        double d = (now() - a0) * 1e6;
        lat[ops++] = (float)d;
        if (d > maxlat) maxlat = d;
    }
    double secs = now() - t0;
    long long some = psi("some") - some0, full = psi("full") - full0, maj = vmstat("pgmajfault") - maj0;
    long long in = vmstat("pswpin") - in0, out = vmstat("pswpout") - out0;
    long long ra = vmstat("workingset_refault_anon") - ra0, rf = vmstat("workingset_refault_file") - rf0;
    qsort(lat, ops, sizeof *lat, cmp);
    double p50 = ops ? lat[(ops - 1) / 2] : 0, p99 = ops ? lat[(size_t)((ops - 1) * 0.99)] : 0;
    printf("BAKE-RESULT ops=%zu planned=%zu p50_us=%.0f p99_us=%.0f max_us=%.0f some_us=%lld full_us=%lld "
           "pgmajfault=%lld pswpin=%lld pswpout=%lld refault_anon=%lld refault_file=%lld grow_ms=%.0f seconds=%.1f sink=%u\n",
           ops, planned, p50, p99, maxlat, some, full, maj, in, out, ra, rf, grow * 1000, secs, sink & 1);
    return 0;
}
