// The official OpenAI SDK (npm `openai`) against `sembed serve`: embeddings of a list of sentences
// requested with the SDK's default (it asks for base64 and decodes), encoding_format "float" and
// "base64" must all equal `sembed embed -f f32` on the same model, bit for bit.
// Usage: node tools/node/serve_openai.js SEMBED_CLI MODEL.semb
'use strict';
const { spawn, execFileSync } = require('child_process');
const OpenAI = require('openai');

const [cli, model] = process.argv.slice(2);
if (!cli || !model) {
  console.error('usage: node serve_openai.js SEMBED_CLI MODEL.semb');
  process.exit(2);
}
const sentences = [
  'A man is playing a guitar.', 'A woman is slicing an onion.', 'The stock market fell sharply today.',
  'hello world', 'Two dogs run across a snowy field.', 'Ünïcödé tëxt ünd 日本語', '',
];

function startServer() {
  return new Promise((resolve, reject) => {
    const p = spawn(cli, ['serve', '-m', model, '--port', '0', '--threads', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve({ proc: p, url: m[1] });
    });
    p.on('exit', (code) => reject(new Error(`server exited with ${code} before listening: ${out}`)));
  });
}

function offline() {
  const raw = execFileSync(cli, ['embed', '-m', model, '-f', 'f32'], { input: sentences.join('\n') + '\n' });
  const dim = raw.length / 4 / sentences.length;
  return { dim, rows: sentences.map((_, i) => new Float32Array(raw.buffer.slice(raw.byteOffset + i * dim * 4, raw.byteOffset + (i + 1) * dim * 4))) };
}

function compare(name, want, got) {
  let bad = 0;
  for (let i = 0; i < want.rows.length; i++) {
    const g = Float32Array.from(got[i]);
    if (g.length !== want.dim) { console.error(`${name}: row ${i} has ${g.length} values, expected ${want.dim}`); bad++; continue; }
    for (let j = 0; j < want.dim; j++)
      if (g[j] !== want.rows[i][j]) { console.error(`${name}: row ${i} value ${j}: expected ${want.rows[i][j]}, got ${g[j]}`); bad++; break; }
  }
  console.log(`${bad ? 'FAIL' : 'ok  '} ${name}: ${want.rows.length} sentences x ${want.dim}`);
  return bad;
}

(async () => {
  const want = offline();
  const srv = await startServer();
  let bad = 0;
  try {
    const client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
    const byDefault = await client.embeddings.create({ model: 'sembed-mini', input: sentences });
    bad += compare('SDK default (base64 on the wire, decoded by the SDK)', want, byDefault.data.map((d) => d.embedding));
    const asFloat = await client.embeddings.create({ model: 'sembed-mini', input: sentences, encoding_format: 'float' });
    bad += compare('encoding_format float', want, asFloat.data.map((d) => d.embedding));
    const asB64 = await client.embeddings.create({ model: 'sembed-mini', input: sentences, encoding_format: 'base64' });
    bad += compare('encoding_format base64', want, asB64.data.map((d) => {
      const b = Buffer.from(d.embedding, 'base64');
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
    }));
    if (asFloat.object !== 'list' || asFloat.usage.prompt_tokens <= 0 || asFloat.data[3].index !== 3) {
      console.error('FAIL response envelope:', JSON.stringify({ ...asFloat, data: undefined })); bad++;
    }
    try {
      await client.embeddings.create({ model: 'sembed-mini', input: [] });
      console.error('FAIL empty input was accepted'); bad++;
    } catch (e) {
      const ok = e.status === 422 && e.error && e.error.type === 'invalid_request_error';
      console.log(`${ok ? 'ok  ' : 'FAIL'} SDK error for empty input: status ${e.status}, ${JSON.stringify(e.error)}`);
      if (!ok) bad++;
    }
  } catch (e) {
    console.error('FAIL', e); bad++;
  }
  srv.proc.removeAllListeners('exit');
  const code = await new Promise((res) => { srv.proc.on('exit', (c) => res(c)); srv.proc.kill('SIGTERM'); });
  if (code !== 0) { console.error(`FAIL server exit status ${code} after SIGTERM`); bad++; }
  console.log(bad ? `serve_openai: ${bad} failures` : 'serve_openai: all passed');
  process.exit(bad ? 1 : 0);
})();
