// Load test for `sembed serve`, loopback only, bounded in time and count (not a test: it asserts
// nothing, it measures). Node's built-in http, no packages. Phases, each against a fresh server:
//   lone      one client, one request at a time, of SIZE sentences: the unloaded latency
//   offline   `sembed embed` on the sentences the saturation phase sent, same threads: the ceiling
//   saturate  CLIENTS closed-loop clients, requests of 1-32 sentences drawn from real text
//   half      open loop at half the saturation rate, requests of SIZE sentences: p99 vs lone, with
//             Poisson arrivals and then paced ones (constant rate, as wrk2 drives a server); each
//             latency counts from the request's scheduled time (no coordinated omission). The
//             Poisson phase also prints what an ideal single-queue server would give on the same
//             arrival times (fcfsModel below): the queueing floor the measured p99 is compared with.
//   overload  CLIENTS clients against --max-concurrent-requests OVERLOAD_LIMIT: errors must be 429 only
// Usage: node tools/serve_load.js --cli build/sembed --model M.semb [--threads 2] [--seconds 60]
//        [--clients 64] [--size 16] [--text FILE (default: the wiki text, else STS-B dev)] [--max-requests 200000]
//        [--rounds 4] [--max-batch-tokens N (default: the server's)] [--overload-limit 8]
//        [--half-rate R: only the lone and half phases, at R requests/s (for A/B runs of the tail)]
'use strict';
const http = require('http');
const fs = require('fs');
const { spawn, execFileSync } = require('child_process');

const args = { cli: 'build/sembed', model: 'models/sembed-mini/sembed-mini.semb', threads: 2, seconds: 60, clients: 64,
  size: 16, text: '', 'max-requests': 200000, 'overload-limit': 8,
  'max-batch-tokens': 0, rounds: 4, 'half-rate': 0 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args)) { console.error(`unknown option ${process.argv[i]}`); process.exit(2); }
  args[k] = typeof args[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
// OpenMP threads that spin while waiting make a 2-thread run 10x slower on a machine whose cores
// are busy with other work (measured: 32 s vs 3 s for 1000 sentences); server and offline both
// get the same policy, printed in the report.
process.env.OMP_WAIT_POLICY = process.env.OMP_WAIT_POLICY || 'passive';
// Default text: the wiki sentences wherever tools/datafile.sh finds them, else the vendored STS-B dev.
function defaultText() {
  for (const rel of ['train/wiki1m_head.txt', 'sts/STSBenchmark/sts-dev.csv']) {
    try {
      const p = execFileSync('bash', [require('path').join(__dirname, 'datafile.sh'), rel], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString().trim();
      if (!rel.endsWith('.csv')) return fs.readFileSync(p, 'utf8').split('\n');
      return fs.readFileSync(p, 'utf8').split('\n').flatMap((l) => l.split('\t').slice(5, 7));
    } catch (e) { /* next */ }
  }
  console.error('serve_load: no text: pass --text FILE (one sentence per line); data/README.md says where the data is');
  process.exit(1);
}
const lines = (args.text ? fs.readFileSync(args.text, 'utf8').split('\n') : defaultText())
  .map((s) => s.trim()).filter((s) => s.length > 0);
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (n) => Array.from({ length: n }, () => lines[Math.floor(rand() * lines.length)]);

function startServer(extra) {
  return new Promise((resolve, reject) => {
    const mbt = args['max-batch-tokens'] ? ['--max-batch-tokens', String(args['max-batch-tokens'])] : [];
    const p = spawn(args.cli, ['serve', '-m', args.model, '--port', '0', '--threads', String(args.threads),
      ...mbt, '--max-client-batch-size', '32', ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve({ proc: p, port: Number(m[1]) });
    });
    p.on('exit', (c) => reject(new Error(`server exited ${c}: ${out}`)));
  });
}
async function stopServer(s) {
  const status = fs.readFileSync(`/proc/${s.proc.pid}/status`, 'utf8');
  const hwm = Number((status.match(/VmHWM:\s+(\d+)/) || [0, 0])[1]);
  s.proc.removeAllListeners('exit');
  const code = await new Promise((res) => { s.proc.on('exit', (c) => res(c)); s.proc.kill('SIGTERM'); });
  return { peakRssMB: hwm / 1024, exit: code };
}

// CPU seconds (user + system) a process has used so far: /proc/PID/stat fields 14 and 15, in ticks.
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / TICK;
}
// `sembed embed` over sentences: wall and CPU seconds (CPU from /usr/bin/time).
function offlineRun(sentences) {
  const file = `/tmp/serve_load_${process.pid}.txt`;
  fs.writeFileSync(file, sentences.join('\n') + '\n');
  const t0 = process.hrtime.bigint();
  const r = require('child_process').spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', args.cli, 'embed', '-m', args.model,
    '-t', String(args.threads), '-f', 'f32'], { stdio: [fs.openSync(file, 'r'), 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.unlinkSync(file);
  const m = r.stderr.toString().match(/CPU ([\d.]+) ([\d.]+)/);
  return { wall, cpu: m ? Number(m[1]) + Number(m[2]) : NaN };
}

// A fresh pool of keep-alive connections per phase or round: spawnSync (the offline run) blocks
// Node's event loop, so the pool would not see the server closing its idle connections meanwhile
// (its --timeout), and the next request on such a socket would fail with ECONNRESET.
let agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
function freshAgent() { agent.destroy(); agent = new http.Agent({ keepAlive: true, maxSockets: 1024 }); }
function post(port, inputs, scheduledNs) {
  const body = JSON.stringify({ input: inputs, model: 'm', encoding_format: 'base64', truncate: true });
  return new Promise((resolve) => {
    const t0 = scheduledNs !== undefined ? scheduledNs : process.hrtime.bigint();
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/embeddings', method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6,
        n: inputs.length }));
    });
    req.on('error', (e) => resolve({ status: 'neterr:' + e.code, ms: 0, n: inputs.length }));
    req.end(body);
  });
}
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN; };
const count = (rs) => rs.reduce((m, r) => ((m[r.status] = (m[r.status] || 0) + 1), m), {});

async function closedLoop(port, clients, seconds, sent) {
  const end = Date.now() + seconds * 1000, results = [];
  let budget = args['max-requests'];
  const t0 = Date.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (Date.now() < end && budget-- > 0) {
      const inputs = pick(1 + Math.floor(rand() * 32));
      const r = await post(port, inputs);
      results.push(r);
      if (sent && r.status === 200) sent.push(...inputs);
    }
  }));
  return { results, secs: (Date.now() - t0) / 1000 };
}

// Open loop at `rate` requests/s of SIZE sentences for `secs`: Poisson or paced arrivals. A
// request's latency runs from its scheduled arrival, so a late send (event-loop lag) counts.
async function openLoop(port, rate, secs, paced) {
  const pending = [], arrivals = [];
  const t0 = process.hrtime.bigint(), span = BigInt(Math.round(secs * 1e9));
  let next = 0; // ms after t0
  while (pending.length < args['max-requests']) {
    next += paced ? 1000 / rate : -Math.log(1 - rand()) * 1000 / rate;
    const at = t0 + BigInt(Math.round(next * 1e6));
    if (at - t0 > span) break;
    const wait = Number(at - process.hrtime.bigint()) / 1e6;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    arrivals.push(next);
    pending.push(post(port, pick(args.size), at));
  }
  return { results: await Promise.all(pending), secs, arrivals };
}

// The best a server that runs one forward pass at a time can do on these arrival times: first
// come first served, each pass takes every request waiting (up to maxk) and lasts a + b k ms,
// b = one request's share of a saturated pass, a + b = the lone request's latency (so HTTP and
// client time count once per pass). Returns latency percentiles (ms).
function fcfsModel(arrivals, a, b, maxk) {
  const lat = [];
  let free = 0, i = 0;
  while (i < arrivals.length) {
    const start = Math.max(free, arrivals[i]);
    let j = i;
    while (j < arrivals.length && arrivals[j] <= start && j - i < maxk) j++;
    if (j === i) j = i + 1;
    const end = start + a + b * (j - i);
    for (let q = i; q < j; q++) lat.push(end - arrivals[q]);
    free = end;
    i = j;
  }
  return { p50_ms: +pct(lat, 0.5).toFixed(1), p95_ms: +pct(lat, 0.95).toFixed(1), p99_ms: +pct(lat, 0.99).toFixed(1) };
}

function summary(name, { results, secs }) {
  const ok = results.filter((r) => r.status === 200), lat = ok.map((r) => r.ms);
  const s = { phase: name, seconds: +secs.toFixed(1), requests: results.length,
    req_per_s: +(ok.length / secs).toFixed(1), sentences_per_s: +(ok.reduce((a, r) => a + r.n, 0) / secs).toFixed(1),
    p50_ms: +pct(lat, 0.5).toFixed(1), p95_ms: +pct(lat, 0.95).toFixed(1), p99_ms: +pct(lat, 0.99).toFixed(1),
    statuses: count(results) };
  console.log(JSON.stringify(s));
  return s;
}

(async () => {
  const report = { cli: args.cli, model: args.model, threads: args.threads, clients: args.clients,
    omp_wait_policy: process.env.OMP_WAIT_POLICY,
    seconds: args.seconds, size: args.size, date: new Date().toISOString() };
  console.log(JSON.stringify(report));
  // lone
  let s = await startServer([]);
  const loneReq = pick(args.size);
  for (let i = 0; i < 3; i++) await post(s.port, loneReq); // warm
  const lone = [];
  for (let i = 0; i < 30; i++) lone.push((await post(s.port, loneReq)).ms);
  report.lone_ms = +pct(lone, 0.5).toFixed(2);
  console.log(JSON.stringify({ phase: 'lone', size: args.size, p50_ms: report.lone_ms, p99_ms: +pct(lone, 0.99).toFixed(2) }));
  if (args['half-rate'] > 0) { // lone + half phases only, at a given rate
    report.saturate = { sentences_per_s: 2 * args['half-rate'] * args.size };
    await stopServer(s);
  } else {
  // saturate, in ROUNDS rounds, each followed by `sembed embed` on exactly the sentences that round
  // embedded: interleaving keeps the two sides of the ratio in the same stretch of a shared
  // machine's load. CPU seconds are counted too (server process vs offline process), which other
  // work on the machine does not inflate: sentences per CPU second is the efficiency comparison.
  const rounds = Math.max(1, args.rounds), sat = { results: [], secs: 0 }, off = { n: 0, wall: 0, cpu: 0 };
  let srvCpu = 0;
  for (let k = 0; k < rounds; k++) {
    freshAgent();
    const sent = [], c0 = cpuSeconds(s.proc.pid), cl0 = process.cpuUsage();
    const r = await closedLoop(s.port, args.clients, args.seconds / rounds, sent);
    srvCpu += cpuSeconds(s.proc.pid) - c0;
    const cl = process.cpuUsage(cl0);
    report.client_cpu_s = (report.client_cpu_s || 0) + (cl.user + cl.system) / 1e6;
    sat.results.push(...r.results);
    sat.secs += r.secs;
    const o = offlineRun(sent);
    off.n += sent.length; off.wall += o.wall; off.cpu += o.cpu;
    console.log(JSON.stringify({ phase: `round ${k + 1}/${rounds}`, server_sentences: sent.length, server_s: +r.secs.toFixed(1),
      offline_s: +o.wall.toFixed(2), ratio: +((sent.length / r.secs) / (sent.length / o.wall)).toFixed(3) }));
  }
  report.saturate = summary('saturate', sat);
  report.saturate.server_cpu_s = +srvCpu.toFixed(1);
  report.saturate.sentences_per_cpu_s = +(report.saturate.sentences_per_s * sat.secs / srvCpu).toFixed(1);
  report.client_cpu_s = +report.client_cpu_s.toFixed(1);
  Object.assign(report.saturate, await stopServer(s));
  report.offline = { sentences: off.n, seconds: +off.wall.toFixed(2), cpu_s: +off.cpu.toFixed(1),
    sentences_per_s: +(off.n / off.wall).toFixed(1), sentences_per_cpu_s: +(off.n / off.cpu).toFixed(1) };
  report.ratio_server_vs_offline = +(report.saturate.sentences_per_s / report.offline.sentences_per_s).toFixed(3);
  report.ratio_per_cpu_second = +(report.saturate.sentences_per_cpu_s / report.offline.sentences_per_cpu_s).toFixed(3);
  console.log(JSON.stringify({ phase: 'offline', ...report.offline, ratio_server_vs_offline: report.ratio_server_vs_offline,
    ratio_per_cpu_second: report.ratio_per_cpu_second, client_cpu_s: report.client_cpu_s }));
  }
  freshAgent();
  // half: open loop at half the saturated sentence rate, requests of SIZE sentences, Poisson then
  // paced arrivals, each against a fresh server
  const rate = report.saturate.sentences_per_s / 2 / args.size; // requests per second
  const halfSecs = Math.max(5, args.seconds / 2);
  const b = args.size * 1000 / report.saturate.sentences_per_s, a = Math.max(0, report.lone_ms - b);
  for (const paced of [false, true]) {
    s = await startServer([]);
    const name = paced ? 'half_paced' : 'half';
    const r = await openLoop(s.port, rate, halfSecs, paced);
    const half = summary(name, r);
    half.arrivals = paced ? 'paced' : 'poisson';
    half.offered_req_per_s = +rate.toFixed(1);
    half.p99_over_lone = +(half.p99_ms / report.lone_ms).toFixed(2);
    half.ideal_fcfs = fcfsModel(r.arrivals, a, b, Infinity);
    half.ideal_fcfs.pass_ms = `${a.toFixed(2)} + ${b.toFixed(2)} k`;
    half.p99_over_ideal = +(half.p99_ms / half.ideal_fcfs.p99_ms).toFixed(2);
    report[name] = half;
    console.log(JSON.stringify({ phase: name, offered_req_per_s: half.offered_req_per_s, p99_over_lone: half.p99_over_lone,
      ideal_fcfs: half.ideal_fcfs, p99_over_ideal: half.p99_over_ideal }));
    Object.assign(report[name], await stopServer(s));
    freshAgent();
  }
  if (args['half-rate'] > 0) { console.log(JSON.stringify(report, null, 1)); agent.destroy(); return; }
  // overload: more clients than the queue admits
  s = await startServer(['--max-concurrent-requests', String(args['overload-limit'])]);
  report.overload = summary('overload', await closedLoop(s.port, args.clients, Math.max(5, args.seconds / 4), null));
  report.overload.limit = args['overload-limit'];
  Object.assign(report.overload, await stopServer(s));
  const badSat = Object.keys(report.saturate.statuses).filter((k) => k !== '200');
  const badOver = Object.keys(report.overload.statuses).filter((k) => k !== '200' && k !== '429');
  report.errors_ok = badSat.length === 0 && badOver.length === 0 &&
    ['half', 'half_paced'].every((p) => Object.keys(report[p].statuses).every((k) => k === '200'));
  console.log(JSON.stringify(report, null, 1));
  agent.destroy();
})();
