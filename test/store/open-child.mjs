// Child of db.test.ts: opens (creating and migrating) the database in argv[2] once, then exits.
// Several of these start at once on a fresh folder. Uses the build (dist/).
import { openDb } from '../../dist/store/db.js';

openDb(process.argv[2]).close();
