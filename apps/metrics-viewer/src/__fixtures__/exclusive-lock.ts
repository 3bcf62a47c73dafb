// Holds an exclusive lock on a metrics database for a while, in its own process, for the busy-
// database test: `node --import tsx exclusive-lock.ts <db> <ms>`. Prints "locked" once it holds it.
import Database from 'better-sqlite3';

const [path, millisecondsText] = process.argv.slice(2);
const database = new Database(path!);
database.pragma('locking_mode = EXCLUSIVE');
database.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('lock-test', ?)").run(String(Date.now()));
process.stdout.write('locked\n');
await new Promise((resolve) => setTimeout(resolve, Number(millisecondsText)));
database.pragma('locking_mode = NORMAL');
database.prepare('SELECT COUNT(*) FROM runs').get();
database.close();
