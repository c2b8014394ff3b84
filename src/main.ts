// Process entry of the built artifact: turn on V8's on-disk compile cache before
// the rest loads (about 50 ms off each start after the first; a read-only or
// missing cache directory just leaves it off), then run the CLI.
import { enableCompileCache } from 'node:module';

enableCompileCache?.();
await import('./cli.ts');
