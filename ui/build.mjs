// node build.mjs OUTDIR
//
// Builds the UI into OUTDIR: app.js (src/main.js and ECharts, bundled and
// minified), app.css, index.html and favicon.svg, exactly these four files.
// Exits non-zero on any error.  The Makefile calls it; the aggregator
// serves index.html at / and the others at /assets/<name>.

import { build } from 'esbuild';
import { mkdir, readdir, copyFile, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const FILES = ['app.js', 'app.css', 'index.html', 'favicon.svg'];

async function main() {
  const out = process.argv[2];
  if (!out || process.argv.length > 3) {
    process.stderr.write('usage: node build.mjs OUTDIR\n');
    return 2;
  }
  const outdir = resolve(out);
  const pkg = JSON.parse(await readFile(join(here, 'package.json'), 'utf8'));
  await mkdir(outdir, { recursive: true });
  // OUTDIR holds our four files only.  Refuse a directory with anything
  // else in it rather than delete what might not be ours; hidden files
  // (the Makefile's .built stamp) are not build output and stay.
  const others = async () => (await readdir(outdir)).filter((n) => !FILES.includes(n) && !n.startsWith('.'));
  const extra = await others();
  if (extra.length) throw new Error(`${outdir} holds other files (${extra.slice(0, 5).join(', ')}); use an empty or a build directory`);
  const common = {
    bundle: true,
    minify: true,
    sourcemap: false,
    target: 'es2020',
    legalComments: 'none',
    logLevel: 'warning',
    write: true,
    absWorkingDir: here,
  };
  await Promise.all([
    build({
      ...common,
      entryPoints: [join(src, 'main.js')],
      outfile: join(outdir, 'app.js'),
      format: 'esm',
      platform: 'browser',
      define: { __FLOWVIS_VERSION__: JSON.stringify(pkg.version), 'process.env.NODE_ENV': '"production"' },
      treeShaking: true,
    }),
    build({
      ...common,
      entryPoints: [join(src, 'style.css')],
      outfile: join(outdir, 'app.css'),
    }),
    copyFile(join(src, 'index.html'), join(outdir, 'index.html')),
    copyFile(join(src, 'favicon.svg'), join(outdir, 'favicon.svg')),
  ]);
  const made = await readdir(outdir);
  const missing = FILES.filter((n) => !made.includes(n));
  const left = await others();
  if (missing.length || left.length) throw new Error(`${outdir}: missing ${missing.join(', ') || '-'}, unexpected ${left.join(', ') || '-'}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`build.mjs: ${err && err.message ? err.message : err}\n`);
    process.exit(1);
  },
);
