// ggufsplit: splits a GGUF file with ggml's own GGUF code from
// node-llama-cpp's prebuilt libggml-base, cutting and laying out the shards
// as llama-gguf-split --split does (tools/gguf-split/gguf-split.cpp of the
// llama.cpp release node-llama-cpp 3.21.1 bundles: split_strategy and
// write), so that the ggufconv tests can compare cogumi's split files with
// llama.cpp's byte for byte. The shards' headers are serialised by ggml
// (gguf_get_meta_data), not by this program. Built by those tests with
// gcc; the Go package itself needs no cgo.
//
//   ggufsplit LIBGGML_BASE IN.gguf OUT_PREFIX size|tensors N
//
// writes OUT_PREFIX-00001-of-0000K.gguf ... and prints K.
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gguf_context;
struct ggml_context;
struct ggml_tensor;
struct gguf_init_params {
    bool no_alloc;
    struct ggml_context **ctx;
};

#define SYM(ret, name, args) static ret(*name) args;
SYM(struct gguf_context *, gguf_init_from_file, (const char *, struct gguf_init_params))
SYM(struct gguf_context *, gguf_init_empty, (void))
SYM(void, gguf_set_kv, (struct gguf_context *, const struct gguf_context *))
SYM(void, gguf_set_val_u16, (struct gguf_context *, const char *, uint16_t))
SYM(void, gguf_set_val_i32, (struct gguf_context *, const char *, int32_t))
SYM(void, gguf_add_tensor, (struct gguf_context *, const struct ggml_tensor *))
SYM(int64_t, gguf_get_n_tensors, (const struct gguf_context *))
SYM(const char *, gguf_get_tensor_name, (const struct gguf_context *, int64_t))
SYM(int64_t, gguf_find_tensor, (const struct gguf_context *, const char *))
SYM(size_t, gguf_get_tensor_offset, (const struct gguf_context *, int64_t))
SYM(size_t, gguf_get_data_offset, (const struct gguf_context *))
SYM(size_t, gguf_get_meta_size, (const struct gguf_context *))
SYM(void, gguf_get_meta_data, (const struct gguf_context *, void *))
SYM(struct ggml_tensor *, ggml_get_tensor, (struct ggml_context *, const char *))
SYM(size_t, ggml_nbytes, (const struct ggml_tensor *))

#define PAD(x, n) (((x) + (n) - 1) / (n) * (n))
#define MAX_SPLITS 4096

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: ggufsplit LIBGGML_BASE IN.gguf OUT_PREFIX size|tensors N\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "ggufsplit: dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
#define LOAD(name)                                                          \
    if (!(*(void **)&name = dlsym(lib, #name))) {                           \
        fprintf(stderr, "ggufsplit: %s lacks %s\n", argv[1], #name);        \
        return 1;                                                           \
    }
    LOAD(gguf_init_from_file) LOAD(gguf_init_empty) LOAD(gguf_set_kv) LOAD(gguf_set_val_u16)
    LOAD(gguf_set_val_i32) LOAD(gguf_add_tensor) LOAD(gguf_get_n_tensors) LOAD(gguf_get_tensor_name)
    LOAD(gguf_find_tensor) LOAD(gguf_get_tensor_offset) LOAD(gguf_get_data_offset)
    LOAD(gguf_get_meta_size) LOAD(gguf_get_meta_data) LOAD(ggml_get_tensor) LOAD(ggml_nbytes)

    bool by_size = strcmp(argv[4], "size") == 0;
    unsigned long long limit = strtoull(argv[5], NULL, 10);
    struct ggml_context *meta = NULL;
    struct gguf_init_params params = {true, &meta};
    struct gguf_context *in = gguf_init_from_file(argv[2], params);
    if (!in) {
        fprintf(stderr, "ggufsplit: cannot read %s\n", argv[2]);
        return 1;
    }
    int n_tensors = (int)gguf_get_n_tensors(in);
    struct gguf_context *outs[MAX_SPLITS];
    int n_out = 0;
    struct gguf_context *cur = NULL;
    // split_strategy: the first shard copies every key; each gets the split keys.
    for (int i = -1; i < n_tensors; i++) {
        size_t n_bytes = 0;
        bool cut = i < 0;
        static size_t cur_size = 0;
        if (i >= 0) {
            struct ggml_tensor *t = ggml_get_tensor(meta, gguf_get_tensor_name(in, i));
            n_bytes = PAD(ggml_nbytes(t), 32);
            size_t next = cur_size + n_bytes;
            cut = by_size ? next > limit : (i > 0 && i < n_tensors && i % (int)limit == 0);
            cur_size = cut ? n_bytes : next;
        }
        if (cut) {
            if (cur && gguf_get_n_tensors(cur) == 0) {
                fprintf(stderr, "ggufsplit: a shard without tensors\n");
                return 1;
            }
            if (n_out == MAX_SPLITS) return 1;
            cur = outs[n_out] = gguf_init_empty();
            if (n_out == 0) gguf_set_kv(cur, in);
            gguf_set_val_u16(cur, "split.no", (uint16_t)n_out);
            gguf_set_val_u16(cur, "split.count", 0);
            gguf_set_val_i32(cur, "split.tensors.count", n_tensors);
            n_out++;
        }
        if (i >= 0) gguf_add_tensor(cur, ggml_get_tensor(meta, gguf_get_tensor_name(in, i)));
    }
    for (int s = 0; s < n_out; s++) gguf_set_val_u16(outs[s], "split.count", (uint16_t)n_out);

    FILE *fin = fopen(argv[2], "rb");
    if (!fin) return 1;
    for (int s = 0; s < n_out; s++) {
        char path[4096];
        snprintf(path, sizeof path, "%s-%05d-of-%05d.gguf", argv[3], s + 1, n_out);
        FILE *f = fopen(path, "wb");
        if (!f) {
            fprintf(stderr, "ggufsplit: cannot write %s\n", path);
            return 1;
        }
        size_t msize = gguf_get_meta_size(outs[s]);
        void *mdata = malloc(msize);
        gguf_get_meta_data(outs[s], mdata);
        fwrite(mdata, 1, msize, f);
        free(mdata);
        for (int j = 0; j < gguf_get_n_tensors(outs[s]); j++) {
            const char *name = gguf_get_tensor_name(outs[s], j);
            size_t n = ggml_nbytes(ggml_get_tensor(meta, name));
            size_t off = gguf_get_data_offset(in) + gguf_get_tensor_offset(in, gguf_find_tensor(in, name));
            char *buf = malloc(n);
            fseek(fin, (long)off, SEEK_SET);
            if (fread(buf, 1, n, fin) != n) return 1;
            fwrite(buf, 1, n, f);
            free(buf);
            for (size_t z = n; z < PAD(n, 32); z++) fputc(0, f);
        }
        if (fclose(f) != 0) return 1;
    }
    printf("%d\n", n_out);
    return 0;
}
