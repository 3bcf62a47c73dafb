// The page's assets, built in memory when the server starts: the client TypeScript bundled with
// esbuild (uPlot included), our stylesheet plus uPlot's, and the HTML shell. The server looks
// assets up by exact name in this map; it never maps a URL to a file path.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface ViewerAsset {
  contentType: string;
  body: string;
}

export interface ViewerAssets {
  html: string;
  files: ReadonlyMap<string, ViewerAsset>;
}

const clientDirectory = fileURLToPath(new URL('./client/', import.meta.url));

export async function buildViewerAssets(): Promise<ViewerAssets> {
  const require = createRequire(import.meta.url);
  const [bundle, uplotCss, ownCss, html] = await Promise.all([
    build({
      entryPoints: [`${clientDirectory}main.ts`],
      bundle: true,
      write: false,
      format: 'esm',
      target: 'es2020',
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
    }),
    readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    readFile(`${clientDirectory}style.css`, 'utf8'),
    readFile(`${clientDirectory}index.html`, 'utf8'),
  ]);
  const script = bundle.outputFiles[0]?.text;
  if (!script) throw new Error('metrics-viewer: esbuild produced no client bundle');
  return {
    html,
    files: new Map([
      ['app.js', { contentType: 'text/javascript; charset=utf-8', body: script }],
      ['app.css', { contentType: 'text/css; charset=utf-8', body: `${uplotCss}\n${ownCss}` }],
    ]),
  };
}
