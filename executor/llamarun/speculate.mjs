// cogumi's speculative decoding bench: a base model and a draft model in
// llama.cpp through node-llama-cpp, driven as llama.cpp's server drives them.
//
//   node speculate.mjs --model BASE.gguf --draft DRAFT.gguf --input PROMPTS.jsonl
//                      --output RESULT.json --max-tokens N --draft-max K
//                      [--draft-min M] [--p-min P] [--threads T]
//                      [--backend cpu|cuda|vulkan|metal] [--version V]
//
// PROMPTS.jsonl holds one {"text": ...} per line. Each prompt is tokenised
// by the base (special tokens as plain text, BOS prepended when the
// vocabulary has one) and continued greedily for up to N tokens (fewer if
// the base ends the text), twice: by the base alone, one token a step; and
// speculatively, as llama-server does with -md (common_speculative_gen_draft,
// then common_sampler_sample_and_accept_n): each step the draft proposes up
// to K tokens greedily, stopping before one it gives less than P
// probability (P 0: no threshold); a draft shorter than M is dropped; the
// base evaluates its last token and the draft in one batch and keeps the
// drafted tokens up to the first it would not have chosen, plus its own
// next token. Drafted and accepted tokens are counted per prompt. The
// speculative output must be the base's own (both greedy), and "same" says
// whether it was.
//
// This does not use node-llama-cpp's DraftSequenceTokenPredictor: in
// 3.21.1 its target sequence validates at most one drafted token a step
// (LlamaContextSequence._speculativeEvaluate compares each further token
// with validatedTokens.at(-1), an array nothing fills), so every token
// after the first counts as refuted, even with the base as its own draft,
// and its acceptance rate is at most 1/K whatever the models.
//
// RESULT.json: {"runtime": "llama.cpp (node-llama-cpp V)", "backend":
// "cpu", "load_ms": ..., "results": [{"prompt_tokens", "generated",
// "drafted", "accepted", "steps", "same", "base_ms", "draft_ms"}]}.
//
// node-llama-cpp is imported from $COGUMI_NODE_LLAMA, a directory holding
// node_modules/node-llama-cpp.
import {createRequire} from "node:module";
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

function parseArgs(argv) {
    const o = {model: "", draft: "", input: "", output: "", maxTokens: 0, draftMax: 0, draftMin: 0, pMin: 0, threads: 0, backend: "cpu", version: ""};
    const nums = {"--max-tokens": "maxTokens", "--draft-max": "draftMax", "--draft-min": "draftMin", "--p-min": "pMin", "--threads": "threads"};
    const strs = {"--model": "model", "--draft": "draft", "--input": "input", "--output": "output", "--backend": "backend", "--version": "version"};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
        const v = argv[++i];
        if (a in nums) o[nums[a]] = Number(v);
        else if (a in strs) o[strs[a]] = v;
        else throw new Error(`unknown argument ${a}`);
    }
    if (!o.model || !o.draft || !o.input || !o.output || !(o.maxTokens >= 1) || !(o.draftMax >= 1))
        throw new Error("usage: speculate.mjs --model BASE.gguf --draft DRAFT.gguf --input PROMPTS.jsonl --output RESULT.json --max-tokens N --draft-max K");
    return o;
}

async function importNodeLlamaCpp() {
    const dir = process.env.COGUMI_NODE_LLAMA;
    if (!dir) throw new Error("COGUMI_NODE_LLAMA is not set (a directory holding node_modules/node-llama-cpp)");
    const entry = createRequire(path.join(dir, "package.json")).resolve("node-llama-cpp");
    return import(pathToFileURL(entry).href);
}

function readPrompts(file) {
    return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((line, i) => {
        const row = JSON.parse(line);
        if (typeof row.text !== "string") throw new Error(`${file}:${i + 1}: no "text"`);
        return row.text;
    });
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const {getLlama, LlamaLogLevel} = await importNodeLlamaCpp();
    const prompts = readPrompts(o.input);
    const t0 = performance.now();
    const llama = await getLlama({gpu: o.backend === "cpu" ? false : o.backend, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false});
    const backend = llama.gpu === false ? "cpu" : llama.gpu;
    if (backend !== o.backend) throw new Error(`asked for backend ${o.backend}, llama.cpp runs on ${backend}`);
    const model = await llama.loadModel({modelPath: o.model});
    const draft = await llama.loadModel({modelPath: o.draft});
    const contextSize = Math.min(4096, model.trainContextSize || 4096, draft.trainContextSize || 4096);
    const threads = o.threads > 0 ? o.threads : undefined;
    const opts = {contextSize, batchSize: contextSize, threads, sequences: 1};
    const target = (await model.createContext(opts)).getSequence();
    const drafter = (await draft.createContext(opts)).getSequence();

    const greedy = {temperature: 0};
    const next = {generateNext: {token: true, options: greedy}};
    const nextP = {generateNext: {token: true, confidence: o.pMin > 0, options: greedy}};
    const tokenize = (text) => {
        const t = Array.from(model.tokenize(text, false));
        if (model.tokens.bos != null) t.unshift(model.tokens.bos);
        return t;
    };
    // prefill evaluates tokens and returns the token that follows them.
    async function prefill(seq, tokens) {
        await seq.clearHistory();
        const out = await seq.controlledEvaluate(tokens.map((t, i) => i === tokens.length - 1 ? [t, next] : t));
        return out[tokens.length - 1]?.next?.token;
    }
    const ended = (t) => t == null || model.isEogToken(t);

    async function plain(tokens) {
        const started = performance.now();
        const out = [];
        let last = await prefill(target, tokens);
        while (!ended(last)) {
            out.push(last);
            if (out.length >= o.maxTokens) break;
            last = (await target.controlledEvaluate([[last, next]]))[0]?.next?.token;
        }
        return {out, ms: performance.now() - started};
    }

    async function speculative(tokens) {
        const started = performance.now();
        const out = [];
        let drafted = 0, accepted = 0, steps = 0;
        let last = await prefill(target, tokens);
        await drafter.clearHistory();
        await drafter.evaluateWithoutGeneratingNewTokens(tokens);
        while (!ended(last)) {
            out.push(last);
            if (out.length >= o.maxTokens) break;
            steps++;
            // The draft: as llama-server, no more than the tokens still wanted
            // after the one the base adds itself.
            const d = [];
            const n = Math.min(o.draftMax, o.maxTokens - out.length - 1);
            for (let feed = last; d.length < n;) {
                const r = (await drafter.controlledEvaluate([[feed, nextP]]))[0]?.next;
                if (r?.token == null || (o.pMin > 0 && !(r.confidence >= o.pMin))) break;
                d.push(r.token);
                feed = r.token;
            }
            if (d.length < o.draftMin) d.length = 0;
            // The base checks it: output i is its choice after d[i-1].
            const r = await target.controlledEvaluate([[last, next], ...d.map((t) => [t, next])]);
            let a = 0;
            while (a < d.length && r[a]?.next?.token === d[a]) a++;
            drafted += d.length;
            accepted += a;
            let stop = false;
            for (const t of d.slice(0, a)) {
                if (ended(t)) {
                    stop = true;
                    break;
                }
                out.push(t);
            }
            // Both contexts keep everything before the base's new token.
            const kept = tokens.concat(out);
            await target.adaptStateToTokens(kept, false);
            await drafter.adaptStateToTokens(kept, false);
            const missing = kept.slice(drafter.nextTokenIndex);
            if (missing.length > 0) await drafter.evaluateWithoutGeneratingNewTokens(missing);
            if (stop) break;
            last = r[a]?.next?.token;
        }
        return {out, drafted, accepted, steps, ms: performance.now() - started};
    }

    // A warm-up on each context: llama.cpp allocates its compute graphs on
    // the first evaluations.
    const warm = tokenize("a");
    await plain(warm);
    await speculative(warm);
    const loadMs = performance.now() - t0;

    const results = [];
    for (const [i, text] of prompts.entries()) {
        const tokens = tokenize(text);
        if (tokens.length + o.maxTokens + o.draftMax > contextSize)
            throw new Error(`prompt ${i + 1}: ${tokens.length} tokens and max_tokens ${o.maxTokens} (+ draft_max ${o.draftMax}) do not fit the context of ${contextSize} tokens`);
        const base = await plain(tokens);
        const spec = await speculative(tokens);
        results.push({
            prompt_tokens: tokens.length,
            generated: spec.out.length,
            drafted: spec.drafted,
            accepted: spec.accepted,
            steps: spec.steps,
            same: base.out.length === spec.out.length && base.out.every((t, j) => t === spec.out[j]),
            base_ms: base.ms,
            draft_ms: spec.ms,
        });
    }
    const res = {runtime: `llama.cpp (node-llama-cpp ${o.version})`, backend, load_ms: loadMs, results};
    fs.writeFileSync(o.output + ".tmp", JSON.stringify(res));
    fs.renameSync(o.output + ".tmp", o.output);
    await target.context.dispose();
    await drafter.context.dispose();
    await draft.dispose();
    await model.dispose();
    await llama.dispose();
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(`llama.cpp speculative bench: ${err?.message ?? err}\n`);
        process.exit(1);
    },
);
