// lora_check.mjs: next-token log-probabilities of a GGUF model, optionally
// with a LoRA adapter applied by llama.cpp (node-llama-cpp's prebuilt CPU
// build), for an independent check of cogumi's adapter files.
//
//   node lora_check.mjs MODEL.gguf [--lora ADAPTER.gguf] [--scale S] (--tokens 256,72,101,... | --prompt TEXT)
//
// Evaluates the tokens (or the prompt, tokenized by llama.cpp with BOS when
// the vocabulary asks for it) in one sequence and prints one JSON object:
// {"tokens": [...], "vocab": N, "logprobs": [[N floats], ...]}: for every position, the
// log-softmax of llama.cpp's logits over the whole vocabulary (from the
// probabilities a greedy sampler reports, which are the softmax of the raw
// logits), indexed by token id; a probability that underflowed to 0 reads
// -1e30. Any failure exits non-zero with the reason
// on stderr.
//
// node-llama-cpp is found in $COGUMI_NODE_LLAMA (a directory holding
// node_modules/node-llama-cpp), else beside this file.
import {createRequire} from "node:module";
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

function parseArgs(argv) {
    const opts = {model: "", lora: "", scale: 1, tokens: [], prompt: ""};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--lora") opts.lora = argv[++i];
        else if (a === "--scale") opts.scale = Number(argv[++i]);
        else if (a === "--tokens") opts.tokens = argv[++i].split(",").map(Number);
        else if (a === "--prompt") opts.prompt = argv[++i];
        else if (a.startsWith("--")) throw new Error(`unknown flag ${a}`);
        else if (opts.model === "") opts.model = a;
        else throw new Error(`unexpected argument ${a}`);
    }
    if (opts.model === "" || (opts.tokens.length === 0) === (opts.prompt === ""))
        throw new Error("usage: lora_check.mjs MODEL.gguf [--lora ADAPTER.gguf] [--scale S] (--tokens T1,T2,... | --prompt TEXT)");
    if (!opts.tokens.every(Number.isInteger)) throw new Error(`--tokens wants token ids, not ${opts.tokens}`);
    return opts;
}

async function importNodeLlamaCpp() {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const dir = process.env.COGUMI_NODE_LLAMA || here;
    let entry;
    try {
        entry = createRequire(path.join(dir, "package.json")).resolve("node-llama-cpp");
    } catch (err) {
        throw new Error(`node-llama-cpp not found under ${dir} (run \`npm ci\` there or set COGUMI_NODE_LLAMA): ${err.message}`);
    }
    return import(pathToFileURL(entry).href);
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const {getLlama, LlamaLogLevel} = await importNodeLlamaCpp();
    const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false});
    const model = await llama.loadModel({modelPath: opts.model});
    try {
        const ctxOpts = {contextSize: 256, batchSize: 256, threads: 2};
        if (opts.lora !== "") ctxOpts.lora = {adapters: [{filePath: opts.lora, scale: opts.scale}]};
        const context = await model.createContext(ctxOpts);
        const sequence = context.getSequence();
        let tokens = opts.tokens;
        if (opts.prompt !== "") {
            tokens = model.tokenize(opts.prompt);
            if (model.tokens.shouldPrependBosToken && model.tokens.bos != null) tokens.unshift(model.tokens.bos);
        }
        const input = tokens.map((t) => [t, {generateNext: {probabilities: true, options: {temperature: 0}}}]);
        const results = await sequence.controlledEvaluate(input);
        const logprobs = [];
        let n = 0;
        for (const r of results) {
            const probs = r?.next?.probabilities;
            if (probs == null) throw new Error("llama.cpp returned no probabilities for a position");
            n = Math.max(n, probs.size);
            // A probability that underflowed to 0 is floored (JSON has no -Infinity).
            const row = new Array(probs.size).fill(-1e30);
            for (const [token, p] of probs) row[token] = Math.max(Math.log(p), -1e30);
            logprobs.push(row);
        }
        // Wait for the write: on a pipe it is asynchronous, and process.exit
        // would cut the output short.
        const text = JSON.stringify({tokens: Array.from(tokens, Number), vocab: n, logprobs}) + "\n";
        await new Promise((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
        await context.dispose();
    } finally {
        await model.dispose();
        await llama.dispose();
    }
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(`lora_check: ${err?.stack ?? err}\n`);
        process.exit(1);
    },
);
