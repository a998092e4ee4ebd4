// imatrixload: reads an imatrix file with common_imatrix_load from
// node-llama-cpp's libllama-common, the loader llama-quantize --imatrix
// uses (tools/quantize/quantize.cpp, load_imatrix), and prints what it
// got as JSON. Built by executor/python's tests with g++ against the
// headers of the release node-llama-cpp ships.
//
//   imatrixload IMATRIX.gguf
#include <cstdio>

#include "imatrix-loader.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: imatrixload IMATRIX.gguf\n");
        return 2;
    }
    common_imatrix m;
    if (!common_imatrix_load(argv[1], m)) {
        std::fprintf(stderr, "imatrixload: common_imatrix_load failed on %s\n", argv[1]);
        return 1;
    }
    std::printf("{\"legacy\":%s,\"metadata\":%s,\"chunk_count\":%d,\"chunk_size\":%d,\"datasets\":[",
                m.is_legacy ? "true" : "false", m.has_metadata ? "true" : "false", m.chunk_count, m.chunk_size);
    for (size_t i = 0; i < m.datasets.size(); i++) {
        std::printf("%s\"%s\"", i ? "," : "", m.datasets[i].c_str());
    }
    std::printf("],\"entries\":{");
    bool first = true;
    for (const auto &[name, e] : m.entries) {
        std::printf("%s\"%s\":{\"sums\":%zu,\"counts\":[", first ? "" : ",", name.c_str(), e.sums.size());
        for (size_t i = 0; i < e.counts.size(); i++) {
            std::printf("%s%lld", i ? "," : "", (long long)e.counts[i]);
        }
        std::printf("]}");
        first = false;
    }
    std::printf("}}\n");
    return 0;
}
