// Run by shards.test.ts as `node --conditions=@baka/source --import tsx <this> CORPUS OUT_DIR`:
// prepares shards with 2 worker threads straight from the TypeScript sources.
import { prepareShards } from '../prepare-shards';

const [corpus, outDir] = process.argv.slice(2);
const manifest = await prepareShards({ corpus: corpus as string, outDir: outDir as string, threads: 2 });
process.stdout.write(JSON.stringify({ numDocuments: manifest.numDocuments, numTokens: manifest.numTokens }));
