// llamaquant: runs llama.cpp's own quantiser, llama_model_quantize from
// node-llama-cpp's prebuilt libllama (the function behind llama-quantize),
// so that the ggufconv tests and benchmark can compare cogumi's GGUF files
// with what llama.cpp makes from the same weights. Built by those tests
// with gcc; the Go package itself needs no cgo.
//
//   llamaquant LIBLLAMA IN.gguf OUT.gguf FTYPE PURE NTHREAD
//
// FTYPE is a llama_ftype number (15 = Q4_K_M), PURE 0 or 1. The struct
// below is llama_model_quantize_params of the llama.cpp release that
// node-llama-cpp 3.21.1 bundles (include/llama.h).
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    int32_t nthread;
    int ftype;                  // enum llama_ftype
    int output_tensor_type;     // enum ggml_type
    int token_embedding_type;   // enum ggml_type
    bool allow_requantize;
    bool quantize_output_tensor;
    bool only_copy;
    bool pure;
    bool keep_split;
    bool dry_run;
    const void *imatrix;
    const void *kv_overrides;
    const void *tt_overrides;
    const int32_t *prune_layers;
    size_t max_buf_size;
} quantize_params;

typedef quantize_params (*default_params_fn)(void);
typedef uint32_t (*quantize_fn)(const char *in, const char *out, const quantize_params *params);
typedef void (*void_fn)(void);

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: llamaquant LIBLLAMA IN.gguf OUT.gguf FTYPE PURE NTHREAD\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "llamaquant: dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    default_params_fn defaults = (default_params_fn)dlsym(lib, "llama_model_quantize_default_params");
    quantize_fn quantize = (quantize_fn)dlsym(lib, "llama_model_quantize");
    void_fn backend_init = (void_fn)dlsym(lib, "llama_backend_init");
    if (!defaults || !quantize || !backend_init) {
        fprintf(stderr, "llamaquant: %s lacks llama_model_quantize\n", argv[1]);
        return 1;
    }
    backend_init();
    quantize_params p = defaults();
    p.ftype = atoi(argv[4]);
    p.pure = atoi(argv[5]) != 0;
    p.nthread = atoi(argv[6]);
    uint32_t rc = quantize(argv[2], argv[3], &p);
    if (rc != 0) {
        fprintf(stderr, "llamaquant: llama_model_quantize failed (%u)\n", rc);
        return 1;
    }
    return 0;
}
