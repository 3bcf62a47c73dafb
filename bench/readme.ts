// Puts the model bench's tables into README.md: replaces what stands between the two marker
// lines of the Benchmarks section with bench/results/model.md (or the file given), which the
// model bench writes formatted as Biome formats markdown, so the README needs no hand work.
//
//   pnpm bench:readme [RESULTS.md]
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BEGIN = '<!-- bench/results/model.md: pnpm bench:readme replaces from here -->';
const END = '<!-- to here -->';

/** `readme` with the text between the markers replaced by `tables`. */
function spliceTables(readme: string, tables: string): string {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < begin) {
    throw new Error(`README.md: the Benchmarks section lacks the lines '${BEGIN}' ... '${END}'`);
  }
  return `${readme.slice(0, begin + BEGIN.length)}\n\n${tables.trim()}\n\n${readme.slice(end)}`;
}

function main(): void {
  const source = resolve(
    process.env.INIT_CWD ?? process.cwd(),
    process.argv[2] ?? join(ROOT, 'bench', 'results', 'model.md'),
  );
  const readmePath = join(ROOT, 'README.md');
  const updated = spliceTables(readFileSync(readmePath, 'utf8'), readFileSync(source, 'utf8'));
  writeFileSync(readmePath, updated);
  process.stdout.write(`README.md: Benchmarks tables replaced by ${relative(ROOT, source)}\n`);
}

main();
