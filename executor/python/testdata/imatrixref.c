// imatrixref: llama-imatrix's computation (tools/imatrix/imatrix.cpp of
// the llama.cpp release node-llama-cpp bundles) over node-llama-cpp's
// prebuilt libllama, for the tests that check cogumi's imatrix rule. Built
// by those tests with gcc against the headers of that release (taken from
// node-llama-cpp's gitRelease.bundle); the Go packages need no cgo.
//
//   imatrixref BINS_DIR MODEL.gguf TEXT.txt CHUNK_SIZE PROCESS_OUTPUT DATASET OUT.gguf
//
// As llama-imatrix: the text is tokenised once (BOS first when the vocab
// adds one, special tokens not parsed), at least two chunks are needed,
// each chunk of CHUNK_SIZE tokens has its first token replaced by BOS and
// is decoded from an empty memory with the logits of every token; the eval
// callback sums the squares of each mul_mat's src1 rows per weight (blk.*,
// and output.weight when PROCESS_OUTPUT is 1; batches under 16 rows
// ignored) and counts the rows, and the result is written as save_imatrix
// writes it. Unlike llama-imatrix, one chunk is decoded per batch (it packs
// n_batch / n_ctx chunks into one), and the K/V cache is F32 without flash
// attention, so that the numbers are those of an F32 forward pass.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "ggml.h"
#include "gguf.h"
#include "llama.h"

#define MAX_ENTRIES 4096

typedef struct {
    char name[GGML_MAX_NAME];
    int64_t ncols;
    float *sums;
    int64_t count;
} entry;

static entry entries[MAX_ENTRIES];
static int n_entries;
static bool process_output;
static char *src1_buf;
static size_t src1_cap;

// filter_tensor_name: "CUDA0#blk.0.attn_k.weight#0" -> "blk.0.attn_k.weight".
static void filter_name(const char *name, char *out) {
    const char *p = strchr(name, '#');
    if (p) {
        p++;
        const char *q = strchr(p, '#');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        memcpy(out, p, n);
        out[n] = 0;
    } else {
        snprintf(out, GGML_MAX_NAME, "%s", name);
    }
}

static bool collect(struct ggml_tensor *t, bool ask, void *user_data) {
    (void)user_data;
    const struct ggml_tensor *src0 = t->src[0];
    const struct ggml_tensor *src1 = t->src[1];
    char wname[GGML_MAX_NAME];
    if (ask) {
        if (t->op == GGML_OP_MUL_MAT_ID) {
            fprintf(stderr, "imatrixref: MUL_MAT_ID (experts) is not handled\n");
            exit(1);
        }
        if (t->op != GGML_OP_MUL_MAT) return false;
        if (src1->ne[1] < 16 || src1->type != GGML_TYPE_F32) return false;
        filter_name(src0->name, wname);
        if (!(strncmp(wname, "blk.", 4) == 0 || (process_output && strcmp(wname, "output.weight") == 0))) return false;
        return true;
    }
    filter_name(src0->name, wname);
    if (src0->ne[2] * src0->ne[3] != 1) {
        fprintf(stderr, "imatrixref: %s is not a 2-d weight\n", wname);
        exit(1);
    }
    size_t nbytes = ggml_nbytes(src1);
    const char *data = (const char *)src1->data;
    if (!ggml_backend_buffer_is_host(src1->buffer)) {
        if (nbytes > src1_cap) {
            src1_buf = realloc(src1_buf, nbytes);
            src1_cap = nbytes;
        }
        ggml_backend_tensor_get(src1, src1_buf, 0, nbytes);
        data = src1_buf;
    }
    entry *e = NULL;
    for (int i = 0; i < n_entries; i++) {
        if (strcmp(entries[i].name, wname) == 0) e = &entries[i];
    }
    if (!e) {
        if (n_entries == MAX_ENTRIES) {
            fprintf(stderr, "imatrixref: too many weights\n");
            exit(1);
        }
        e = &entries[n_entries++];
        snprintf(e->name, sizeof e->name, "%s", wname);
        e->ncols = src1->ne[0];
        e->sums = calloc(e->ncols, sizeof(float));
    } else if (e->ncols != src1->ne[0]) {
        fprintf(stderr, "imatrixref: inconsistent size for %s\n", wname);
        exit(1);
    }
    // As imatrix.cpp: float accumulation, row after row.
    for (int64_t i3 = 0; i3 < src1->ne[3]; i3++) {
        for (int64_t i2 = 0; i2 < src1->ne[2]; i2++) {
            for (int64_t row = 0; row < src1->ne[1]; row++) {
                const float *x = (const float *)(data + row * src1->nb[1] + i2 * src1->nb[2] + i3 * src1->nb[3]);
                for (int64_t j = 0; j < e->ncols; j++) e->sums[j] += x[j] * x[j];
            }
        }
    }
    e->count += ggml_nrows(src1);
    return true;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: imatrixref BINS_DIR MODEL.gguf TEXT.txt CHUNK_SIZE PROCESS_OUTPUT DATASET OUT.gguf\n");
        return 2;
    }
    const int n_ctx = atoi(argv[4]);
    process_output = atoi(argv[5]) != 0;

    FILE *f = fopen(argv[3], "rb");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n_text = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc(n_text + 1);
    if (fread(text, 1, n_text, f) != (size_t)n_text) {
        perror(argv[3]);
        return 1;
    }
    text[n_text] = 0;
    fclose(f);

    ggml_backend_load_all_from_path(argv[1]);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[2], mp);
    if (!model) {
        fprintf(stderr, "imatrixref: cannot load %s\n", argv[2]);
        return 1;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_ubatch = n_ctx;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.cb_eval = collect;
    cp.cb_eval_user_data = NULL;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "imatrixref: cannot make a context\n");
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    const bool add_bos = llama_vocab_get_add_bos(vocab);

    int n_max = (int)n_text + 16;
    llama_token *tokens = malloc(sizeof(llama_token) * n_max);
    int n_tokens = llama_tokenize(vocab, text, (int32_t)n_text, tokens, n_max, true, false);
    if (n_tokens < 0) {
        fprintf(stderr, "imatrixref: tokenize failed\n");
        return 1;
    }
    if (n_tokens < 2 * n_ctx) {
        fprintf(stderr, "imatrixref: %d tokens, need %d\n", n_tokens, 2 * n_ctx);
        return 1;
    }
    const int n_chunk = n_tokens / n_ctx;

    struct llama_batch batch = llama_batch_init(n_ctx, 0, 1);
    for (int c = 0; c < n_chunk; c++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = 0;
        for (int k = 0; k < n_ctx; k++) {
            llama_token tok = tokens[c * n_ctx + k];
            if (k == 0 && add_bos) tok = llama_vocab_bos(vocab);
            batch.token[k] = tok;
            batch.pos[k] = k;
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = 0;
            batch.logits[k] = true;
            batch.n_tokens++;
        }
        if (llama_decode(ctx, batch)) {
            fprintf(stderr, "imatrixref: decode failed\n");
            return 1;
        }
    }
    llama_batch_free(batch);
    printf("%d tokens, %d chunks, %d entries\n", n_tokens, n_chunk, n_entries);

    // save_imatrix: sorted names, general.type, datasets, chunk count and
    // size, then <name>.in_sum2 and <name>.counts per entry.
    qsort(entries, n_entries, sizeof(entry), cmp_entry);
    size_t data_size = 0;
    for (int i = 0; i < n_entries; i++) {
        data_size += GGML_PAD(ggml_tensor_overhead() + sizeof(float) * entries[i].ncols, GGML_MEM_ALIGN);
        data_size += GGML_PAD(ggml_tensor_overhead() + sizeof(float), GGML_MEM_ALIGN);
    }
    struct ggml_init_params ip = {data_size, NULL, false};
    struct ggml_context *gctx = ggml_init(ip);
    struct gguf_context *g = gguf_init_empty();
    const char *datasets[1] = {argv[6]};
    gguf_set_val_str(g, "general.type", "imatrix");
    gguf_set_arr_str(g, "imatrix.datasets", datasets, 1);
    gguf_set_val_u32(g, "imatrix.chunk_count", (uint32_t)(entries[0].count / n_ctx));
    gguf_set_val_u32(g, "imatrix.chunk_size", (uint32_t)n_ctx);
    for (int i = 0; i < n_entries; i++) {
        struct ggml_tensor *in_sum2 = ggml_new_tensor_2d(gctx, GGML_TYPE_F32, entries[i].ncols, 1);
        struct ggml_tensor *counts = ggml_new_tensor_2d(gctx, GGML_TYPE_F32, 1, 1);
        ggml_format_name(in_sum2, "%s.in_sum2", entries[i].name);
        ggml_format_name(counts, "%s.counts", entries[i].name);
        memcpy(in_sum2->data, entries[i].sums, sizeof(float) * entries[i].ncols);
        ((float *)counts->data)[0] = (float)entries[i].count;
        gguf_add_tensor(g, in_sum2);
        gguf_add_tensor(g, counts);
    }
    if (!gguf_write_to_file(g, argv[7], false)) {
        fprintf(stderr, "imatrixref: cannot write %s\n", argv[7]);
        return 1;
    }
    gguf_free(g);
    ggml_free(gctx);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
