// llamaquant: runs llama.cpp's own quantiser, llama_model_quantize from
// node-llama-cpp's prebuilt libllama (the function behind llama-quantize),
// with what llama-quantize's command line does around it
// (tools/quantize/quantize.cpp): the importance matrix read by libllama-common's
// common_imatrix_load and normalised as its load_imatrix does, the
// quantize.imatrix.* keys as kv overrides, --tensor-type patterns
// lower-cased. The ggufconv tests and the benchmark compare cogumi's GGUF
// files with what it writes. Built by them with g++ against the libraries:
//
//   g++ -std=c++17 -O1 -o llamaquant llamaquant.cpp LIBDIR/libllama-common.so \
//       LIBDIR/libllama.v0.4.0.so LIBDIR/libggml-base.so -Wl,-rpath,LIBDIR
//
//   llamaquant [--pure] [--imatrix FILE] [--tensor-type PATTERN=TYPE]...
//              [--token-embedding-type TYPE] [--output-tensor-type TYPE]
//              IN.gguf OUT.gguf FTYPE NTHREAD
//
// FTYPE is a llama_ftype number (15 = Q4_K_M). The structs below are those
// of include/llama.h and common/imatrix-loader.h of the llama.cpp release
// that node-llama-cpp 3.21.1 bundles; the Go package itself needs no cgo.
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

extern "C" {
struct llama_model_tensor_override {
    const char *pattern;
    int type; // enum ggml_type
};
struct llama_model_imatrix_data {
    const char *name;
    const float *data;
    size_t size;
};
enum kv_override_type { KV_INT, KV_FLOAT, KV_BOOL, KV_STR };
struct llama_model_kv_override {
    int tag; // enum llama_model_kv_override_type
    char key[128];
    union {
        int64_t val_i64;
        double val_f64;
        bool val_bool;
        char val_str[128];
    };
};
typedef struct {
    int32_t nthread;
    int ftype;                // enum llama_ftype
    int output_tensor_type;   // enum ggml_type
    int token_embedding_type; // enum ggml_type
    bool allow_requantize;
    bool quantize_output_tensor;
    bool only_copy;
    bool pure;
    bool keep_split;
    bool dry_run;
    const llama_model_imatrix_data *imatrix;
    const llama_model_kv_override *kv_overrides;
    const llama_model_tensor_override *tt_overrides;
    const int32_t *prune_layers;
    size_t max_buf_size;
} llama_model_quantize_params;

llama_model_quantize_params llama_model_quantize_default_params(void);
uint32_t llama_model_quantize(const char *in, const char *out, const llama_model_quantize_params *params);
void llama_backend_init(void);
const char *ggml_type_name(int type);
}

struct common_imatrix_entry {
    std::vector<float> sums;
    std::vector<int64_t> counts;
};
struct common_imatrix {
    std::map<std::string, common_imatrix_entry> entries;
    std::vector<std::string> datasets;
    int32_t chunk_count = 0;
    int32_t chunk_size = 0;
    bool is_legacy = false;
    bool has_metadata = false;
};
bool common_imatrix_load(const std::string &fname, common_imatrix &imatrix);

static const int GGML_TYPE_COUNT = 43;

static int parse_type(const char *s) {
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const char *name = ggml_type_name(t);
        if (name && strcasecmp(name, s) == 0) {
            return t;
        }
    }
    std::fprintf(stderr, "llamaquant: unknown ggml type %s\n", s);
    std::exit(2);
}

static void kv_str(std::vector<llama_model_kv_override> &kvs, const char *key, const std::string &v) {
    llama_model_kv_override o{};
    std::strcpy(o.key, key);
    o.tag = KV_STR;
    std::strncpy(o.val_str, v.c_str(), 127);
    o.val_str[127] = 0;
    kvs.push_back(o);
}

static void kv_int(std::vector<llama_model_kv_override> &kvs, const char *key, int64_t v) {
    llama_model_kv_override o{};
    std::strcpy(o.key, key);
    o.tag = KV_INT;
    o.val_i64 = v;
    kvs.push_back(o);
}

int main(int argc, char **argv) {
    llama_model_quantize_params p = llama_model_quantize_default_params();
    std::string imatrix_file;
    std::vector<std::string> patterns;
    std::vector<int> pattern_types;
    int i = 1;
    for (; i < argc && std::strncmp(argv[i], "--", 2) == 0; i++) {
        std::string a = argv[i];
        if (a == "--pure") {
            p.pure = true;
        } else if (i + 1 < argc && a == "--imatrix") {
            imatrix_file = argv[++i];
        } else if (i + 1 < argc && a == "--token-embedding-type") {
            p.token_embedding_type = parse_type(argv[++i]);
        } else if (i + 1 < argc && a == "--output-tensor-type") {
            p.output_tensor_type = parse_type(argv[++i]);
        } else if (i + 1 < argc && a == "--tensor-type") {
            std::string v = argv[++i];
            size_t eq = v.find('=');
            if (eq == std::string::npos || eq == 0) {
                std::fprintf(stderr, "llamaquant: --tensor-type %s: want PATTERN=TYPE\n", v.c_str());
                return 2;
            }
            std::string pat = v.substr(0, eq);
            for (auto &c : pat) {
                c = (char)std::tolower((unsigned char)c);
            }
            patterns.push_back(pat);
            pattern_types.push_back(parse_type(v.c_str() + eq + 1));
        } else {
            std::fprintf(stderr, "llamaquant: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc - i != 4) {
        std::fprintf(stderr, "usage: llamaquant [options] IN.gguf OUT.gguf FTYPE NTHREAD\n");
        return 2;
    }
    p.ftype = std::atoi(argv[i + 2]);
    p.nthread = std::atoi(argv[i + 3]);

    // load_imatrix and the keys llama_quantize adds.
    std::unordered_map<std::string, std::vector<float>> data;
    std::vector<llama_model_imatrix_data> idata;
    std::vector<llama_model_kv_override> kvs;
    if (!imatrix_file.empty()) {
        common_imatrix m;
        if (!common_imatrix_load(imatrix_file, m)) {
            std::fprintf(stderr, "llamaquant: common_imatrix_load failed on %s\n", imatrix_file.c_str());
            return 1;
        }
        if (!m.is_legacy && !m.has_metadata) {
            std::fprintf(stderr, "llamaquant: missing imatrix metadata in %s\n", imatrix_file.c_str());
            return 1;
        }
        for (const auto &[name, e] : m.entries) {
            auto &w = data[name];
            w.resize(e.sums.size());
            const int64_t ncounts = e.counts.size();
            const int64_t ne0 = (int64_t)e.sums.size() / ncounts;
            for (int64_t j = 0; j < ncounts; j++) {
                const float count = (float)e.counts[j];
                for (int64_t k = 0; k < ne0; k++) {
                    w[j * ne0 + k] = count > 0.0f ? e.sums[j * ne0 + k] / count : 1;
                }
            }
        }
        for (const auto &[name, w] : data) {
            idata.push_back({name.c_str(), w.data(), w.size()});
        }
        idata.push_back({nullptr, nullptr, 0});
        p.imatrix = idata.data();
        kv_str(kvs, "quantize.imatrix.file", imatrix_file);
        if (!m.datasets.empty()) {
            kv_str(kvs, "quantize.imatrix.dataset", m.datasets[0]);
        }
        kv_int(kvs, "quantize.imatrix.entries_count", (int64_t)data.size());
        if (m.chunk_count > 0) {
            kv_int(kvs, "quantize.imatrix.chunks_count", m.chunk_count);
        }
        kvs.push_back(llama_model_kv_override{});
        p.kv_overrides = kvs.data();
    }
    std::vector<llama_model_tensor_override> tts;
    if (!patterns.empty()) {
        for (size_t k = 0; k < patterns.size(); k++) {
            tts.push_back({patterns[k].c_str(), pattern_types[k]});
        }
        tts.push_back({nullptr, GGML_TYPE_COUNT});
        p.tt_overrides = tts.data();
    }

    llama_backend_init();
    if (llama_model_quantize(argv[i], argv[i + 1], &p) != 0) {
        std::fprintf(stderr, "llamaquant: llama_model_quantize failed\n");
        return 1;
    }
    return 0;
}
