// load_gguf.mjs: an independent check of cogumi's GGUF files with llama.cpp
// (node-llama-cpp's prebuilt CPU build).
//
//   node load_gguf.mjs MODEL.gguf [--prompt TEXT] [--tokens N] [--info]
//
// Loads the model, tokenizes the prompt (with BOS when the vocabulary asks
// for it), generates N tokens greedily and
// prints one JSON object: {tokens, generated, text, info}. With --info it
// only parses the file with node-llama-cpp's own GGUF reader (no model
// load) and prints {info}. Any failure exits non-zero with the reason on
// stderr.
//
// node-llama-cpp is found in $COGUMI_NODE_LLAMA (a directory holding
// node_modules/node-llama-cpp), else in the repository's testdata/llama,
// where `npm ci` installs the pinned version.
import {createRequire} from "node:module";
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

function parseArgs(argv) {
    const opts = {prompt: "Hello world", tokens: 8, info: false, model: ""};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--prompt") opts.prompt = argv[++i];
        else if (a === "--tokens") opts.tokens = Number(argv[++i]);
        else if (a === "--info") opts.info = true;
        else if (a.startsWith("--")) throw new Error(`unknown flag ${a}`);
        else if (opts.model === "") opts.model = a;
        else throw new Error(`unexpected argument ${a}`);
    }
    if (opts.model === "") throw new Error("usage: load_gguf.mjs MODEL.gguf [--prompt TEXT] [--tokens N] [--info]");
    if (!Number.isInteger(opts.tokens) || opts.tokens < 0) throw new Error(`--tokens wants a count, not ${opts.tokens}`);
    return opts;
}

async function importNodeLlamaCpp() {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const dir = process.env.COGUMI_NODE_LLAMA || path.resolve(here, "..", "..", "..", "testdata", "llama");
    let entry;
    try {
        entry = createRequire(path.join(dir, "package.json")).resolve("node-llama-cpp");
    } catch (err) {
        throw new Error(`node-llama-cpp not found under ${dir} (run \`npm ci\` there or set COGUMI_NODE_LLAMA): ${err.message}`);
    }
    return import(pathToFileURL(entry).href);
}

// summarize keeps the metadata that tells whether llama.cpp understood the
// file, without dumping a 32k-entry vocabulary.
function summarize(fileInfo) {
    const md = fileInfo.metadata ?? {};
    const tok = md.tokenizer?.ggml ?? {};
    return {
        version: fileInfo.version,
        architecture: md.general?.architecture,
        fileType: md.general?.file_type,
        tokenizerModel: tok.model,
        vocabSize: tok.tokens?.length,
        tensorCount: fileInfo.tensorInfo?.length,
        tensors: (fileInfo.tensorInfo ?? []).map((t) => ({name: t.name, type: t.ggmlType, dims: t.dimensions.map(Number)})),
    };
}

// writeOut resolves once text is written: on a pipe process.stdout.write is
// asynchronous, and process.exit right after it could cut the output short.
function writeOut(text) {
    return new Promise((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const {getLlama, readGgufFileInfo, LlamaLogLevel} = await importNodeLlamaCpp();
    const info = summarize(await readGgufFileInfo(opts.model, {logWarnings: false}));
    if (opts.info) {
        await writeOut(JSON.stringify({info}) + "\n");
        return;
    }
    const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false});
    const model = await llama.loadModel({modelPath: opts.model});
    try {
        const context = await model.createContext({contextSize: 256, batchSize: 64, threads: 2});
        const sequence = context.getSequence();
        const tokens = model.tokenize(opts.prompt);
        if (tokens.length === 0) throw new Error(`prompt ${JSON.stringify(opts.prompt)} tokenized to nothing`);
        // Prepend BOS as llama.cpp's own tools do when the vocabulary asks
        // for it (tokenizer.ggml.add_bos_token).
        if (model.tokens.shouldPrependBosToken && model.tokens.bos != null) tokens.unshift(model.tokens.bos);
        const generated = [];
        if (opts.tokens > 0) {
            for await (const token of sequence.evaluate(tokens, {temperature: 0})) {
                generated.push(token);
                if (generated.length >= opts.tokens) break;
            }
        }
        const text = model.detokenize(generated);
        await writeOut(JSON.stringify({tokens, generated, text, info}) + "\n");
        await context.dispose();
    } finally {
        await model.dispose();
        await llama.dispose();
    }
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(`load_gguf: ${err?.stack ?? err}\n`);
        process.exit(1);
    },
);
