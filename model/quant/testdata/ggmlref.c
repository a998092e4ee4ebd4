// ggmlref: runs ggml_quantize_chunk from a libggml-base.so (node-llama-cpp's
// prebuilt llama.cpp) so that cogumi's Go quantisers can be compared with
// the real thing byte for byte. Built by the quant tests with gcc; the Go
// package itself needs no cgo.
//
//   ggmlref LIB quantize TYPE NROWS NPERROW
//       reads NROWS*NPERROW little-endian float32 on stdin, writes the
//       quantised rows on stdout.
//   ggmlref LIB quantizew TYPE NROWS NPERROW
//       the same with importance weights: after the rows, NPERROW more
//       float32 (one per column, as llama-quantize passes an imatrix entry).
//   ggmlref LIB dequantize TYPE NROWS NPERROW
//       reads NROWS quantised rows on stdin and writes them back as float32
//       through the type's to_float (dequantize_row_*).
//   ggmlref LIB batch TYPE 0 0
//       runs many quantisations in one process (the lattice i-quants'
//       tables take libggml up to seconds to build in each): reads jobs
//       until EOF, each three little-endian int64 (NROWS, NPERROW, FLAGS),
//       the floats, and with FLAGS&1 NPERROW importance weights; writes an
//       int64 byte count, the quantised rows, then with FLAGS&2 their
//       to_float expansion. Each job's output is flushed before the next
//       starts, so when libggml aborts the jobs before it still come back.
//   ggmlref LIB bench|benchw TYPE NROWS NPERROW THREADS ITERS
//       reads the floats (and for benchw the weights) once, builds the
//       type's tables (ggml_quantize_init), quantises the floats ITERS
//       times split over THREADS threads (contiguous row ranges, as
//       llama-quantize splits a tensor), prints the elapsed and the CPU
//       nanoseconds of the quantisation alone.
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef size_t (*quantize_chunk_fn)(int type, const float *src, void *dst, int64_t start,
                                    int64_t nrows, int64_t n_per_row, const float *imatrix);
typedef size_t (*row_size_fn)(int type, int64_t ne);
typedef void (*to_float_fn)(const void *x, float *y, int64_t k);

// The head of ggml.h's struct ggml_type_traits, up to to_float.
struct type_traits {
    const char *type_name;
    int64_t blck_size;
    int64_t blck_size_interleave;
    size_t type_size;
    _Bool is_quantized;
    to_float_fn to_float;
};
typedef const struct type_traits *(*get_type_traits_fn)(int type);

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

static int batch(int type, row_size_fn row_size, get_type_traits_fn get_type_traits) {
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
            const struct type_traits *tr = get_type_traits(type);
            if (!tr->to_float) {
                fprintf(stderr, "ggmlref: type %d has no to_float\n", type);
                return 1;
            }
            tr->to_float(dst, src, (int64_t)nvals);
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
        fprintf(stderr, "usage: ggmlref LIB quantize|quantizew|dequantize|batch|bench|benchw TYPE NROWS NPERROW [THREADS ITERS]\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "ggmlref: dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    quantize_chunk = (quantize_chunk_fn)dlsym(lib, "ggml_quantize_chunk");
    row_size_fn row_size = (row_size_fn)dlsym(lib, "ggml_row_size");
    get_type_traits_fn get_type_traits = (get_type_traits_fn)dlsym(lib, "ggml_get_type_traits");
    if (!quantize_chunk || !row_size || !get_type_traits) {
        fprintf(stderr, "ggmlref: %s lacks ggml_quantize_chunk, ggml_row_size or ggml_get_type_traits\n", argv[1]);
        return 1;
    }
    const char *mode = argv[2];
    if (strcmp(mode, "batch") == 0) {
        return batch(atoi(argv[3]), row_size, get_type_traits);
    }
    int weighted = strcmp(mode, "quantizew") == 0 || strcmp(mode, "benchw") == 0;
    int type = atoi(argv[3]);
    int64_t nrows = atoll(argv[4]), n_per_row = atoll(argv[5]);
    size_t nvals = (size_t)(nrows * n_per_row);
    size_t rsize = row_size(type, n_per_row);
    float *src = malloc(nvals * sizeof(float) + 1);
    char *dst = malloc(rsize * (size_t)nrows + 1);
    float *imatrix = weighted ? malloc((size_t)n_per_row * sizeof(float)) : NULL;
    if (!src || !dst || (weighted && !imatrix)) {
        fprintf(stderr, "ggmlref: out of memory\n");
        return 1;
    }
    if (strcmp(mode, "dequantize") == 0) {
        const struct type_traits *tr = get_type_traits(type);
        if (!tr->to_float) {
            fprintf(stderr, "ggmlref: type %d has no to_float\n", type);
            return 1;
        }
        if (read_full(dst, rsize * (size_t)nrows) != 0) {
            fprintf(stderr, "ggmlref: short input, want %zu bytes\n", rsize * (size_t)nrows);
            return 1;
        }
        tr->to_float(dst, src, (int64_t)nvals);
        fwrite(src, sizeof(float), nvals, stdout);
        return 0;
    }
    if (read_full(src, nvals * sizeof(float)) != 0) {
        fprintf(stderr, "ggmlref: short input, want %zu floats\n", nvals);
        return 1;
    }
    if (weighted && read_full(imatrix, (size_t)n_per_row * sizeof(float)) != 0) {
        fprintf(stderr, "ggmlref: short input, want %lld weights after the rows\n", (long long)n_per_row);
        return 1;
    }
    if (strcmp(mode, "quantize") == 0 || strcmp(mode, "quantizew") == 0) {
        quantize_chunk(type, src, dst, 0, nrows, n_per_row, imatrix);
        fwrite(dst, 1, rsize * (size_t)nrows, stdout);
        return 0;
    }
    if (strcmp(mode, "bench") != 0 && strcmp(mode, "benchw") != 0) {
        fprintf(stderr, "ggmlref: unknown mode %s\n", mode);
        return 2;
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
