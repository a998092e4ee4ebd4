// ggmlref: runs ggml_quantize_chunk from a libggml-base.so (node-llama-cpp's
// prebuilt llama.cpp) so that cogumi's Go quantisers can be compared with
// the real thing byte for byte. Built by the quant tests with gcc; the Go
// package itself needs no cgo.
//
//   ggmlref LIB quantize TYPE NROWS NPERROW [imatrix]
//       reads NROWS*NPERROW little-endian float32 on stdin (then, with
//       "imatrix", NPERROW importance weights), writes the quantised rows
//       on stdout.
//   ggmlref LIB batch TYPE 0 0
//       runs many quantisations in one process (the lattice i-quants'
//       tables take libggml up to seconds to build in each): reads jobs
//       until EOF, each three little-endian int64 (NROWS, NPERROW, FLAGS),
//       the floats, and with FLAGS&1 NPERROW importance weights; writes an
//       int64 byte count, the quantised rows, then with FLAGS&2 their
//       to_float expansion. Each
//       job's output is flushed before the next starts, so when libggml
//       aborts the jobs before it still come back.
//   ggmlref LIB bench TYPE NROWS NPERROW THREADS ITERS [imatrix]
//       reads the floats (and weights) once, builds the type's tables
//       (ggml_quantize_init), quantises the floats ITERS times split over
//       THREADS threads (contiguous row ranges, as llama-quantize splits a tensor),
//       prints the elapsed and the CPU nanoseconds of the quantisation alone.
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef size_t (*quantize_chunk_fn)(int type, const float *src, void *dst, int64_t start,
                                    int64_t nrows, int64_t n_per_row, const float *imatrix);
typedef size_t (*row_size_fn)(int type, int64_t ne);
typedef void (*to_float_fn)(const void *x, float *y, int64_t k);

// The head of ggml.h's struct ggml_type_traits, up to to_float.
struct type_traits_head {
    const char *type_name;
    int64_t blck_size;
    int64_t blck_size_interleave;
    size_t type_size;
    _Bool is_quantized;
    to_float_fn to_float;
};
typedef const struct type_traits_head *(*get_type_traits_fn)(int type);

static quantize_chunk_fn quantize_chunk;

struct job {
    int type;
    const float *src;
    char *dst;
    int64_t row0, nrows, n_per_row;
    const float *imatrix;
};

static void *run_job(void *arg) {
    struct job *j = arg;
    if (j->nrows > 0) {
        quantize_chunk(j->type, j->src, j->dst, j->row0 * j->n_per_row, j->nrows, j->n_per_row, j->imatrix);
    }
    return NULL;
}

static int read_full(void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        size_t r = fread((char *)buf + got, 1, n - got, stdin);
        if (r == 0) return -1;
        got += r;
    }
    return 0;
}

static int batch(int type, row_size_fn row_size, get_type_traits_fn traits) {
    int64_t hdr[3];
    while (fread(hdr, sizeof(int64_t), 3, stdin) == 3) {
        int64_t nrows = hdr[0], n_per_row = hdr[1], flags = hdr[2];
        size_t nvals = (size_t)(nrows * n_per_row), rsize = row_size(type, n_per_row) * (size_t)nrows;
        float *src = malloc(nvals * sizeof(float) + 1), *w = NULL;
        char *dst = malloc(rsize + 1);
        if (!src || !dst || read_full(src, nvals * sizeof(float)) != 0) {
            fprintf(stderr, "ggmlref: short batch input\n");
            return 1;
        }
        if (flags & 1) {
            w = malloc((size_t)n_per_row * sizeof(float));
            if (!w || read_full(w, (size_t)n_per_row * sizeof(float)) != 0) {
                fprintf(stderr, "ggmlref: short batch weights\n");
                return 1;
            }
        }
        quantize_chunk(type, src, dst, 0, nrows, n_per_row, w);
        int64_t nout = (int64_t)rsize + ((flags & 2) ? (int64_t)(nvals * sizeof(float)) : 0);
        fwrite(&nout, sizeof nout, 1, stdout);
        fwrite(dst, 1, rsize, stdout);
        if (flags & 2) {
            if (!traits || !traits(type)->to_float) {
                fprintf(stderr, "ggmlref: no to_float for type %d\n", type);
                return 1;
            }
            traits(type)->to_float(dst, src, (int64_t)nvals);
            fwrite(src, sizeof(float), nvals, stdout);
        }
        fflush(stdout); // a later job may abort
        free(src);
        free(dst);
        free(w);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: ggmlref LIB quantize|batch|bench TYPE NROWS NPERROW [imatrix | THREADS ITERS [imatrix]]\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "ggmlref: dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    quantize_chunk = (quantize_chunk_fn)dlsym(lib, "ggml_quantize_chunk");
    row_size_fn row_size = (row_size_fn)dlsym(lib, "ggml_row_size");
    if (!quantize_chunk || !row_size) {
        fprintf(stderr, "ggmlref: %s lacks ggml_quantize_chunk or ggml_row_size\n", argv[1]);
        return 1;
    }
    int type = atoi(argv[3]);
    if (argv[2][0] == 'b' && argv[2][1] == 'a') {
        return batch(type, row_size, (get_type_traits_fn)dlsym(lib, "ggml_get_type_traits"));
    }
    int64_t nrows = atoll(argv[4]), n_per_row = atoll(argv[5]);
    size_t nvals = (size_t)(nrows * n_per_row);
    size_t rsize = row_size(type, n_per_row);
    float *src = malloc(nvals * sizeof(float));
    char *dst = malloc(rsize * (size_t)nrows + 1);
    if (!src || !dst) {
        fprintf(stderr, "ggmlref: out of memory\n");
        return 1;
    }
    if (read_full(src, nvals * sizeof(float)) != 0) {
        fprintf(stderr, "ggmlref: short input, want %zu floats\n", nvals);
        return 1;
    }
    float *imatrix = NULL;
    int want_imatrix = (argv[2][0] == 'q' && argc > 6) || (argv[2][0] == 'b' && argc > 8);
    if (want_imatrix) {
        imatrix = malloc((size_t)n_per_row * sizeof(float));
        if (!imatrix || read_full(imatrix, (size_t)n_per_row * sizeof(float)) != 0) {
            fprintf(stderr, "ggmlref: short input, want %lld importance weights\n", (long long)n_per_row);
            return 1;
        }
    }
    if (argv[2][0] == 'q') {
        quantize_chunk(type, src, dst, 0, nrows, n_per_row, imatrix);
        fwrite(dst, 1, rsize * (size_t)nrows, stdout);
        return 0;
    }
    if (argc < 8) {
        fprintf(stderr, "ggmlref: bench needs THREADS ITERS\n");
        return 2;
    }
    int threads = atoi(argv[6]), iters = atoi(argv[7]);
    if (threads < 1 || threads > 64) threads = 1;
    pthread_t tid[64];
    struct job jobs[64];
    struct timespec t0, t1, c0, c1;
    // Build the i-quants' grid tables before the clock starts (the first
    // ggml_quantize_chunk would otherwise).
    void (*quantize_init)(int) = (void (*)(int))dlsym(lib, "ggml_quantize_init");
    if (quantize_init) quantize_init(type);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    for (int it = 0; it < iters; it++) {
        int64_t per = (nrows + threads - 1) / threads;
        for (int t = 0; t < threads; t++) {
            int64_t r0 = t * per, r1 = r0 + per < nrows ? r0 + per : nrows;
            jobs[t] = (struct job){type, src, dst, r0, r1 > r0 ? r1 - r0 : 0, n_per_row, imatrix};
            pthread_create(&tid[t], NULL, run_job, &jobs[t]);
        }
        for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    long long cpu = (long long)(c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec);
    printf("%lld %lld\n", ns, cpu);
    return 0;
}
